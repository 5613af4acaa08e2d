"""Normalisation statistics of a dataset's state and action, computed once from the parquet columns.

Format (the contract; stored in every checkpoint as stats.json):
    {"observation.state": {"q01": [...], "q99": [...], "mean": [...], "std": [...], "min": [...], "max": [...]},
     "action": {...}}                  lists of floats, one per dimension

Quantiles are numpy's (linear interpolation) over every frame of the selected episodes, std is the population
std (ddof 0), as in the reference's dataset statistics. Only the state/action parquet columns are read (no
video decoding). The result is cached in `<dataset root>/pion_stats.json` under a fingerprint of the data
files (path, size, mtime), the layout's keys and the episode selection, so a changed dataset is recomputed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from vla.data.errors import DatasetError, DatasetNotFoundError, column_matrix
from vla.data.layouts import ACTION, STATE, Layout

log = logging.getLogger(__name__)

STATS_KEYS = (STATE, ACTION)
FIELDS = ("q01", "q99", "mean", "std", "min", "max")
CACHE_FILE = "pion_stats.json"
STATS_VERSION = 1


def stats_from_arrays(arrays: Mapping[str, np.ndarray]) -> dict[str, dict[str, list[float]]]:
    """Stats of (N, D) arrays, one entry per key."""
    out: dict[str, dict[str, list[float]]] = {}
    for key, values in arrays.items():
        x = np.asarray(values, dtype=np.float64)
        if x.ndim != 2 or len(x) == 0:
            raise ValueError(f"stats of {key!r} need a non-empty (N, D) array, got shape {x.shape}")
        q01, q99 = np.quantile(x, [0.01, 0.99], axis=0)
        fields = {
            "q01": q01,
            "q99": q99,
            "mean": x.mean(axis=0),
            "std": x.std(axis=0),
            "min": x.min(axis=0),
            "max": x.max(axis=0),
        }
        out[key] = {name: [float(v) for v in arr] for name, arr in fields.items()}
    return out


def _data_files(root: Path) -> list[Path]:
    files = sorted((root / "data").rglob("*.parquet"))
    if not files:
        raise DatasetNotFoundError(f"dataset {root} has no data/**/*.parquet files")
    return files


def fingerprint(root: Path, layout: Layout, episodes: list[int] | None) -> str:
    """A hash of what the stats depend on: the data files' names/sizes/mtimes, the keys, the episodes."""
    h = hashlib.sha256()
    h.update(
        json.dumps([layout.keys[STATE], layout.keys[ACTION], sorted(episodes) if episodes else None]).encode()
    )
    for f in _data_files(root):
        st = f.stat()
        h.update(f"{f.relative_to(root)}:{st.st_size}:{st.st_mtime_ns};".encode())
    return h.hexdigest()[:24]


def read_columns(root: Path, layout: Layout, episodes: list[int] | None = None) -> dict[str, np.ndarray]:
    """The state and action columns of a LeRobot dataset as canonical-keyed (N, D) float arrays."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    native = [c for k in STATS_KEYS for c in layout.native(k)]
    try:
        table = pa.concat_tables(
            [pq.read_table(f, columns=[*native, "episode_index"]) for f in _data_files(root)]
        )
    except (pa.ArrowInvalid, KeyError, OSError) as e:
        raise DatasetError(
            f"dataset {root}: cannot read columns {native} from its parquet files ({e})"
        ) from e
    if episodes is not None:
        table = table.filter(pc.is_in(table["episode_index"], value_set=pa.array(episodes, pa.int64())))
    out = {}
    for key in STATS_KEYS:
        parts = []
        for col in layout.native(key):  # DROID split columns are concatenated, as the loader serves them
            try:
                parts.append(column_matrix(table[col]))
            except DatasetError as e:
                raise DatasetError(f"dataset {root}: column {col!r}: {e}") from e
        out[key] = np.concatenate(parts, axis=1)
    return out


def _dataset_parts(dataset: Any) -> tuple[Path, Layout, list[int] | None]:
    libero = getattr(dataset, "libero", dataset)  # ChunkDataset -> LiberoDataset
    try:
        return Path(libero.root), libero.layout, libero.episodes
    except AttributeError as e:
        raise TypeError(
            f"compute_stats needs a LiberoDataset or ChunkDataset, got {type(dataset).__name__}"
        ) from e


def compute_stats(dataset: Any, *, cache: bool = True) -> dict[str, dict[str, list[float]]]:
    """Stats of `dataset` (a `ChunkDataset` or `LiberoDataset`), from the cache when the data is unchanged."""
    root, layout, episodes = _dataset_parts(dataset)
    key = fingerprint(root, layout, episodes)
    path = root / CACHE_FILE
    if cache and path.is_file():
        try:
            cached = json.loads(path.read_text()).get(key)
            if cached is not None:
                return validate_stats(cached, source=str(path))
        except (ValueError, AttributeError) as e:
            log.warning("ignoring unreadable stats cache %s (%s)", path, e)
    stats = stats_from_arrays(read_columns(root, layout, episodes))
    if cache:
        _write_cache(path, key, stats)
    return stats


def _write_cache(path: Path, key: str, stats: dict) -> None:
    try:
        entries = json.loads(path.read_text()) if path.is_file() else {}
        if not isinstance(entries, dict):
            entries = {}
    except ValueError:
        entries = {}
    entries[key] = stats
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(entries))
        os.replace(tmp, path)
    except OSError as e:  # a read-only dataset (e.g. a shared hub cache) still gets its stats, uncached
        log.info("could not cache stats at %s (%s)", path, e)
        tmp.unlink(missing_ok=True)


def validate_stats(stats: Any, source: str = "stats") -> dict[str, dict[str, list[float]]]:
    """Check the contract format (both keys, all fields, equal lengths, finite floats); return it as given."""
    if not isinstance(stats, Mapping):
        raise DatasetError(f"{source}: stats must be a mapping, got {type(stats).__name__}")
    for key in STATS_KEYS:
        entry = stats.get(key)
        if not isinstance(entry, Mapping):
            raise DatasetError(f"{source}: missing stats for {key!r}")
        missing = [f for f in FIELDS if f not in entry]
        if missing:
            raise DatasetError(f"{source}: stats of {key!r} lack {missing}")
        lengths = {len(entry[f]) for f in FIELDS}
        if len(lengths) != 1:
            raise DatasetError(f"{source}: stats fields of {key!r} have different lengths {sorted(lengths)}")
        if not all(isinstance(v, int | float) and math.isfinite(v) for f in FIELDS for v in entry[f]):
            raise DatasetError(f"{source}: stats of {key!r} hold non-finite or non-numeric values")
    return {k: {f: [float(v) for v in stats[k][f]] for f in FIELDS} for k in STATS_KEYS}


def save_stats(stats: Mapping, path: str | Path) -> Path:
    """Write stats as JSON (atomically)."""
    path = Path(path)
    data = validate_stats(stats)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)
    return path


def load_stats(path: str | Path) -> dict[str, dict[str, list[float]]]:
    """Read and validate a stats JSON (e.g. a checkpoint's stats.json)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetNotFoundError(f"stats file {path} does not exist")
    try:
        data = json.loads(path.read_text())
    except ValueError as e:
        raise DatasetError(f"stats file {path} is not valid JSON ({e})") from e
    return validate_stats(data, source=str(path))
