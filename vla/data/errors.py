"""Dataset errors: one line naming the dataset and what to do (CLIs turn them into exit code 2); and
`column_matrix`, the one reader of a numeric parquet column (shared by the frame reader and the stats)."""

from __future__ import annotations


class DatasetError(ValueError):
    """A dataset exists but cannot be used: malformed metadata, wrong feature shapes, no usable samples."""


class DatasetNotFoundError(DatasetError, FileNotFoundError):
    """No dataset at the given path (or not in the local hub cache)."""


def one_line(text: str, limit: int = 300) -> str:
    """Collapse a (possibly multi-line) message from a library into one short line."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def column_matrix(column):
    """A parquet column of fixed-size vectors as an (N, D) float64 numpy array. lerobot stores a (1,) feature
    (e.g. DROID's gripper_position) as plain scalars, other vectors as lists: both are read."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    n = len(column)
    if (
        pa.types.is_list(column.type)
        or pa.types.is_fixed_size_list(column.type)
        or pa.types.is_large_list(column.type)
    ):
        flat = pc.list_flatten(column).to_numpy(zero_copy_only=False)
    else:
        flat = column.to_numpy(zero_copy_only=False)
    if n == 0 or flat.size % n:
        raise DatasetError(f"column of {n} rows holds {flat.size} values: empty or ragged")
    return flat.reshape(n, -1).astype(np.float64)
