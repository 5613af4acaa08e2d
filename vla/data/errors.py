"""Dataset errors: one line naming the dataset and what to do (CLIs turn them into exit code 2)."""

from __future__ import annotations


class DatasetError(ValueError):
    """A dataset exists but cannot be used: malformed metadata, wrong feature shapes, no usable samples."""


class DatasetNotFoundError(DatasetError, FileNotFoundError):
    """No dataset at the given path (or not in the local hub cache)."""


def one_line(text: str, limit: int = 300) -> str:
    """Collapse a (possibly multi-line) message from a library into one short line."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."
