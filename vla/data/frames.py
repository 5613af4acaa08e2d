"""A fast reader of a LeRobot v3 dataset's frames, for training: same values as lerobot's item path.

lerobot's `LeRobotDataset.__getitem__` per sample: opens each camera's MP4, seeks, decodes, converts every
decoded frame HWC -> CHW with a strided torch copy (~2 ms per 256² frame), starts a thread pool for the two
cameras, and queries the parquet rows of the action window one by one. For training we want HWC uint8 and
a chunk of actions, so `FrameReader` does the same work directly:
  - state / action / index columns are read once into numpy (small: no images);
  - an action chunk is rows t..t+T-1 of the episode, the rows past its end repeat the last one and are
    flagged in `action_is_pad` (lerobot's clamping and padding, exactly);
  - a video frame is found as lerobot's pyav path finds it (seek to the keyframe at or before the
    timestamp, decode forward, closest frame within `tolerance_s`) but through a per-process cache of open
    containers and straight to HWC uint8; PNG frames stored in the parquet are decoded with PIL.
`tests/data/test_frames.py` checks every field against lerobot's own items, pixel for pixel.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import numpy as np

from vla.data.errors import DatasetError, column_matrix
from vla.data.layouts import ACTION, STATE

_INHERITED: list[dict] = []  # decoders a forked worker inherited from its parent (see _VideoCache.get)


class _VideoCache:
    """Open pyav containers per file, private to the process that opened them (DataLoader workers fork)."""

    def __init__(self, max_open: int = 16) -> None:
        self.max_open = max_open
        self._pid = os.getpid()
        self._open: dict[str, Any] = {}

    def get(self, path: str):
        if os.getpid() != self._pid:  # a forked worker: never share the parent's decoder state
            # ...and never free it either: closing a decoder inherited through fork joins decoder threads
            # that do not exist in this process (dav1d) and hangs. Keep those objects alive, unused.
            _INHERITED.append(self._open)
            self._pid, self._open = os.getpid(), {}
        entry = self._open.pop(path, None)
        if entry is None:
            import av

            container = av.open(path)
            entry = (container, container.streams.video[0])
            while len(self._open) >= self.max_open:
                old = self._open.pop(next(iter(self._open)))
                old[0].close()
        self._open[path] = entry  # most recently used last
        return entry

    def __getstate__(self) -> dict:  # spawn-started workers get an empty cache
        return {"max_open": self.max_open, "_pid": -1, "_open": {}}


def decode_frame(cache: _VideoCache, path: str, ts: float, tolerance_s: float) -> np.ndarray:
    """The frame of `path` closest to `ts` seconds, as (H, W, 3) uint8 (lerobot's pyav selection rule)."""
    container, stream = cache.get(path)
    container.seek(round(ts / stream.time_base) - 1, backward=True, any_frame=False, stream=stream)
    best, best_dist = None, float("inf")
    for frame in container.decode(stream):
        if frame.pts is None:
            continue
        frame_ts = float(frame.pts * stream.time_base)
        dist = abs(frame_ts - ts)
        if dist < best_dist:
            best, best_dist = frame, dist
        if frame_ts >= ts:
            break
    if best is None or best_dist >= tolerance_s:
        raise DatasetError(
            f"{path}: no frame within {tolerance_s}s of t={ts:.4f}s (nearest off by {best_dist:.4f}s)"
        )
    return best.to_ndarray(format="rgb24")


class FrameReader:
    """Numpy columns plus image access for the rows of one opened `LiberoDataset` (positions as lerobot's)."""

    def __init__(self, libero, chunk_len: int) -> None:
        base = libero.base
        hf = base.hf_dataset
        if getattr(hf, "_indices", None) is not None:
            hf = hf.flatten_indices()
        self.table = hf.data
        self.root = Path(base.root)
        self.meta = base.meta
        self.layout = libero.layout
        self.chunk_len = int(chunk_len)
        self.tolerance_s = float(base.tolerance_s)
        col = lambda name: self.table.column(name).to_numpy()  # noqa: E731
        self.episode_index = col("episode_index").astype(np.int64)
        self.frame_index = col("frame_index").astype(np.int64)
        self.index = col("index").astype(np.int64)
        self.timestamp = col("timestamp").astype(np.float64)
        self.task_index = col("task_index").astype(np.int64)
        self.state = self._matrix(self.layout.native(STATE))
        self.action = self._matrix(self.layout.native(ACTION))
        # the rows of each episode are contiguous: the last row of every row's episode
        change = np.flatnonzero(np.diff(self.episode_index)) + 1
        ends = np.append(change, len(self.episode_index)) - 1
        self.episode_last_row = np.repeat(ends, np.diff(np.concatenate([[0], ends + 1])))
        self.tasks = [str(t) for t in self.meta.tasks.index]
        self.video_keys = set(self.meta.video_keys)
        self._videos: dict[tuple[int, str], tuple[str, float]] = {}
        self._cache = _VideoCache()

    def _matrix(self, names: tuple[str, ...]) -> np.ndarray:
        """(N, D) float32 of one column, or of several concatenated (DROID split state / action)."""
        return np.concatenate([column_matrix(self.table.column(n)) for n in names], axis=1).astype(np.float32)

    def __len__(self) -> int:
        return len(self.index)

    def _video(self, episode: int, key: str) -> tuple[str, float]:
        """(file path, episode start time in the file) of one camera of one episode, cached."""
        found = self._videos.get((episode, key))
        if found is None:
            ep = self.meta.episodes[episode]
            path = str(self.root / self.meta.get_video_file_path(episode, key))
            found = self._videos[(episode, key)] = (path, float(ep[f"videos/{key}/from_timestamp"]))
        return found

    def image(self, row: int, canonical: str) -> np.ndarray:
        key = self.layout.keys[canonical]
        if key in self.video_keys:
            path, start = self._video(int(self.episode_index[row]), key)
            return decode_frame(self._cache, path, start + float(self.timestamp[row]), self.tolerance_s)
        from PIL import Image

        cell = self.table.column(key)[row].as_py()
        with Image.open(io.BytesIO(cell["bytes"])) as img:
            return np.array(img.convert("RGB"))  # a writable copy (torch.from_numpy warns on read-only)

    def sample(self, row: int) -> dict[str, Any]:
        """The contract's sample at dataset position `row` (numpy arrays; see `ChunkDataset`)."""
        wanted = row + np.arange(self.chunk_len)
        last = self.episode_last_row[row]
        return {
            **{key: self.image(row, key) for key in self.layout.image_keys},
            STATE: self.state[row],
            ACTION: self.action[np.minimum(wanted, last)],
            "action_is_pad": wanted > last,
            "task": self.tasks[self.task_index[row]],
            "index": self.index[row],
            "episode_index": self.episode_index[row],
        }
