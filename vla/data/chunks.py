"""Training samples: one frame's observation with the chunk of actions that starts at it.

    ds = open_chunk_dataset("local/demos", root="outputs/demos/libero_object_seed0/dataset", chunk_len=8)
    ds.valid_starts            # frame indices that may start a sample (what the sampler draws from)
    ds[int(ds.valid_starts[0])]
    # {observation.images.image: uint8 (H,W,3), observation.images.image2: uint8 (H,W,3),
    #  observation.state: float32 (8,), action: float32 (T,7), action_is_pad: bool (T,), task: str,
    #  index: int64 (frame index), episode_index: int64}

Chunking convention (VLA-Adapter / OpenVLA-OFT, `chunk_act_obs` with one observation and T-1 future actions):
the sample starting at frame t of an episode of length L holds actions t .. t+T-1 (T = `chunk_len`).
With `tail="drop"` (the reference, default) only frames t <= L - T may start a sample, so the last T-1 frames
of every episode are never starts and no training chunk runs past the episode end (`action_is_pad` all False);
an episode shorter than T contributes no sample. With `tail="pad"` every frame starts a sample and chunks that
run past the end repeat the last action with `action_is_pad` True there (lerobot's padding).
Indices are positions in the (possibly episode-filtered) dataset, as `LeRobotDataset.__getitem__` takes them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from vla.data.errors import DatasetError
from vla.data.frames import FrameReader
from vla.data.layouts import ACTION, STATE
from vla.data.loader import LiberoDataset, hub_metadata, load_libero_dataset

TAILS = ("drop", "pad")
READERS = ("fast", "lerobot")  # vla.data.frames.FrameReader, or LeRobotDataset.__getitem__ (the reference)
DEFAULT_CHUNK_LEN = 8


def to_uint8_hwc(image: torch.Tensor) -> torch.Tensor:
    """lerobot's (C,H,W) image — float in [0,1] (k/255 exactly) or uint8 — as uint8 (H,W,C), exactly."""
    if image.dtype != torch.uint8:
        if not image.is_floating_point():
            raise TypeError(f"expected a float or uint8 image tensor, got {image.dtype}")
        image = (image * 255.0).round_().clamp_(0, 255).to(torch.uint8)
    # numpy's transposing copy is ~6x faster than torch's permute().contiguous() for a 3-channel uint8 image
    return torch.from_numpy(np.ascontiguousarray(image.numpy().transpose(1, 2, 0)))


def valid_start_positions(
    episode_index: np.ndarray, frame_index: np.ndarray, chunk_len: int, tail: str = "drop"
) -> np.ndarray:
    """Dataset positions that may start a sample, given per-row episode and frame indices (see module doc).

    Episode lengths are counted from the rows themselves: LeRobot stores whole episodes contiguously.
    """
    if tail not in TAILS:
        raise ValueError(f"tail must be one of {TAILS}, got {tail!r}")
    if chunk_len < 1:
        raise ValueError(f"chunk_len must be >= 1, got {chunk_len}")
    episode_index = np.asarray(episode_index, dtype=np.int64)
    frame_index = np.asarray(frame_index, dtype=np.int64)
    if tail == "pad":
        return np.arange(len(episode_index), dtype=np.int64)
    episodes, inverse, counts = np.unique(episode_index, return_inverse=True, return_counts=True)
    lengths = counts[inverse]
    return np.flatnonzero(frame_index <= lengths - chunk_len).astype(np.int64)


class ChunkDataset(Dataset):
    """Samples in the contract's training format over a `LiberoDataset` opened with action chunk offsets.

    Image keys are the layout's canonical cameras (LIBERO image / image2, DROID exterior / wrist)."""

    def __init__(
        self,
        libero: LiberoDataset,
        chunk_len: int = DEFAULT_CHUNK_LEN,
        tail: str = "drop",
        reader: str = "fast",
    ) -> None:
        if reader not in READERS:
            raise ValueError(f"reader must be one of {READERS}, got {reader!r}")
        self.libero = libero
        self.chunk_len = int(chunk_len)
        self.tail = tail
        self.reader = reader
        self.name = str(libero.root)
        _check_shapes(libero, self.name)
        hf = libero.base.hf_dataset
        if hf is None or len(hf) == 0:
            raise DatasetError(f"dataset {self.name} has no frames")
        table = hf.data
        self.episode_index = table.column("episode_index").to_numpy().astype(np.int64)
        frame_index = table.column("frame_index").to_numpy().astype(np.int64)
        self.valid_starts = valid_start_positions(self.episode_index, frame_index, self.chunk_len, tail)
        self.frames = FrameReader(libero, self.chunk_len) if reader == "fast" else None
        if len(self.valid_starts) == 0:
            raise DatasetError(
                f"dataset {self.name} has no episode of at least chunk_len={self.chunk_len} frames; "
                "use a smaller chunk_len or tail='pad'"
            )

    @property
    def fps(self) -> int:
        return self.libero.fps

    @property
    def root(self) -> Path:
        return self.libero.root

    @property
    def num_episodes(self) -> int:
        return self.libero.num_episodes

    @property
    def num_samples(self) -> int:
        """How many samples an epoch holds: the number of valid start frames."""
        return len(self.valid_starts)

    def __len__(self) -> int:
        """Number of frames (any frame index is readable; only `valid_starts` are drawn for training)."""
        return len(self.libero)

    def __getitem__(self, idx: int) -> dict[str, Any]:
        if self.frames is not None:
            s = self.frames.sample(int(idx))
            return {
                **{key: torch.from_numpy(s[key]) for key in self.libero.layout.image_keys},
                STATE: torch.tensor(s[STATE]),
                ACTION: torch.tensor(s[ACTION]),
                "action_is_pad": torch.from_numpy(s["action_is_pad"]),
                "task": s["task"],
                "index": torch.tensor(int(s["index"])),
                "episode_index": torch.tensor(int(s["episode_index"])),
            }
        item = self.libero[int(idx)]
        pad = item.get("action_is_pad")
        action = item[ACTION].to(torch.float32)
        if action.ndim == 1:  # opened without delta timestamps: a chunk of one
            action = action[None]
            pad = torch.zeros(1, dtype=torch.bool)
        return {
            **{key: to_uint8_hwc(item[key]) for key in self.libero.layout.image_keys},
            STATE: item[STATE].to(torch.float32),
            ACTION: action,
            "action_is_pad": pad.to(torch.bool),
            "task": str(item["task"]),
            "index": item["index"].to(torch.int64),
            "episode_index": item["episode_index"].to(torch.int64),
        }


def _check_shapes(libero: LiberoDataset, name: str) -> None:
    features, layout = libero.meta.features, libero.layout
    robot = "DROID" if layout.is_droid else "LIBERO"
    for key, dim in layout.dims.items():
        cols = layout.native(key)
        shapes = [tuple(features[c]["shape"]) for c in cols]
        if any(len(s) != 1 for s in shapes) or sum(s[0] for s in shapes) != dim:
            raise DatasetError(
                f"dataset {name}: {' + '.join(map(repr, cols))} has shape {' + '.join(map(str, shapes))}, "
                f"expected ({dim},) (the {robot} {dim}-D {'state' if key == STATE else 'action'})"
            )


def chunk_offsets(chunk_len: int, fps: float) -> list[float]:
    """delta_timestamps (seconds) of a chunk's actions: 0, 1/fps, ..., (chunk_len-1)/fps."""
    return [i / fps for i in range(chunk_len)]


def open_chunk_dataset(
    repo_id: str = "local/dataset",
    root: str | Path | None = None,
    *,
    chunk_len: int = DEFAULT_CHUNK_LEN,
    tail: str = "drop",
    layout: str | None = "auto",
    episodes: list[int] | None = None,
    video_backend: str | None = None,
    reader: str = "fast",
) -> ChunkDataset:
    """Open a LIBERO LeRobot dataset (any known layout) as training samples of `chunk_len` actions.

    `reader="fast"` assembles samples with `vla.data.frames.FrameReader` (same values, ~3x faster);
    `reader="lerobot"` goes through `LeRobotDataset.__getitem__` with the chunk as delta_timestamps.
    """
    if chunk_len < 1:
        raise ValueError(f"chunk_len must be >= 1, got {chunk_len}")
    if tail not in TAILS:
        raise ValueError(f"tail must be one of {TAILS}, got {tail!r}")
    fps = _read_fps(Path(root)) if root is not None else hub_metadata(repo_id).fps
    kwargs: dict[str, Any] = {
        "return_uint8": True
    }  # videos decode straight to uint8; PNG frames arrive as float
    if video_backend is not None:
        kwargs["video_backend"] = video_backend
    libero = load_libero_dataset(
        repo_id,
        root,
        layout=layout,
        delta_timestamps={ACTION: chunk_offsets(chunk_len, fps)},
        episodes=episodes,
        **kwargs,
    )
    return ChunkDataset(libero, chunk_len, tail, reader)


def _read_fps(root: Path) -> float:
    import json

    from vla.data.loader import _read_feature_keys

    _read_feature_keys(root)  # raises the one-line missing/malformed errors
    info = json.loads((root / "meta" / "info.json").read_text())
    fps = info.get("fps")
    if not isinstance(fps, int | float) or fps <= 0:
        raise DatasetError(f"{root / 'meta' / 'info.json'} has no valid fps ({fps!r})")
    return float(fps)
