"""Load a LIBERO or DROID LeRobotDataset in any known layout and serve items under the canonical keys.

    ds = load_libero_dataset("lerobot/libero", root="/data/libero",
                             delta_timestamps={"action": [0.0, 0.1, 0.2]})
    item = ds[0]   # keys: observation.images.image, observation.images.image2, observation.state,
                   #       action (+ action_is_pad), task, and the bookkeeping keys (index, ...)

`delta_timestamps` is given in canonical keys and translated to the dataset's own keys. A canonical key stored
as several columns (DROID `lerobot_droid` / `openpi_droid`, `vla.data.layouts`) is served concatenated.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from vla.data.errors import DatasetError, DatasetNotFoundError, one_line
from vla.data.layouts import Layout, detect_layout, get_layout
from vla.data.video import video_backend

AUTO = ("auto", None)  # layout values that detect the layout from the dataset's features (configs: null)


class LiberoDataset(Dataset):
    """A `LeRobotDataset` whose items are renamed to the canonical keys of its layout (LIBERO or DROID)."""

    def __init__(self, base, layout: Layout) -> None:
        self.base = base
        self.layout = layout
        self._rename = layout.to_canonical()
        self._composite = layout.composite
        self._parts = {c for cols in self._composite.values() for c in cols}

    def __len__(self) -> int:
        return len(self.base)

    @property
    def num_episodes(self) -> int:
        return self.base.num_episodes

    @property
    def fps(self) -> int:
        return self.base.fps

    @property
    def meta(self):
        return self.base.meta

    @property
    def root(self) -> Path:
        return Path(self.base.root)

    @property
    def episodes(self) -> list[int] | None:
        """The selected episode indices (None: all)."""
        return self.base.episodes

    def _canonical(self, key: str) -> str:
        if key in self._rename:
            return self._rename[key]
        for suffix in ("_is_pad",):
            if key.endswith(suffix) and key[: -len(suffix)] in self._rename:
                return self._rename[key[: -len(suffix)]] + suffix
        return key

    def __getitem__(self, idx: int) -> dict[str, Any]:
        item = self.base[idx]
        out = {self._canonical(k): v for k, v in item.items() if k not in self._parts}
        for key, cols in self._composite.items():
            # a (1,) feature stored as scalars comes without its last axis: give every part the leading shape
            # (time window, if any) of the widest one
            parts = [torch.as_tensor(item[c]) for c in cols]
            widest = max(range(len(cols)), key=lambda i: self.layout.part_dims.get(cols[i], 0))
            lead = parts[widest].shape[:-1]
            out[key] = torch.cat([p.reshape(*lead, -1) for p in parts], -1)
            if f"{cols[0]}_is_pad" in item:
                out[f"{key}_is_pad"] = item[f"{cols[0]}_is_pad"]
        return out


def _read_feature_keys(root: Path) -> list[str]:
    import json

    if not root.exists():
        raise DatasetNotFoundError(
            f"dataset directory {root} does not exist (generate one with pion-gen-demos)"
        )
    info = root / "meta" / "info.json"
    if not info.is_file():
        raise DatasetNotFoundError(f"{root} is not a LeRobot dataset (no meta/info.json)")
    try:
        meta = json.loads(info.read_text())
        features = meta["features"]
        if not isinstance(features, dict):
            raise TypeError("'features' is not a mapping")
    except (ValueError, KeyError, TypeError) as e:
        raise DatasetError(
            f"{info} is malformed ({one_line(e)}); regenerate or re-download the dataset"
        ) from e
    version = str(meta.get("codebase_version", "?"))
    if not version.startswith("v3."):
        raise DatasetError(
            f"dataset {root} is LeRobot format {version}; lerobot 0.6.1 reads v3.x: convert it with "
            f"`python -m lerobot.scripts.convert_dataset_v21_to_v30 --repo-id=<id> --root={root}` (v2.1 only)"
        )
    return list(features)


def hub_metadata(repo_id: str):
    """`LeRobotDatasetMetadata` of a hub dataset (local cache, or a download when online)."""
    from lerobot.datasets.lerobot_dataset import LeRobotDatasetMetadata

    try:
        return LeRobotDatasetMetadata(repo_id)
    except Exception as e:  # hub/cache errors come in many types; the user needs one line
        raise DatasetNotFoundError(
            f"dataset {repo_id!r} is not available locally ({one_line(e)}); pass root=<dir> or download it"
        ) from e


def load_libero_dataset(
    repo_id: str,
    root: str | Path | None = None,
    *,
    layout: str | None = "auto",
    delta_timestamps: Mapping[str, Sequence[float]] | None = None,
    episodes: list[int] | None = None,
    **kwargs: Any,
) -> LiberoDataset:
    """Open a dataset (local `root`, or the HF cache for `repo_id`) in layout `auto` (or None) or a `LAYOUTS` name.

    Videos are decoded with `vla.data.video.video_backend()` unless `video_backend=` is given. A missing or
    malformed dataset raises `DatasetNotFoundError` / `DatasetError` (one line naming it).
    """
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    name = str(root) if root is not None else repo_id
    if root is not None:
        root = Path(root)
        features = _read_feature_keys(root)
        chosen = detect_layout(features, f"dataset {root}") if layout in AUTO else get_layout(layout)
    else:
        meta = hub_metadata(repo_id)
        chosen = detect_layout(meta.features, f"dataset {repo_id}") if layout in AUTO else get_layout(layout)
    kwargs.setdefault("video_backend", video_backend())
    native_dt = None
    if delta_timestamps:
        unknown = [k for k in delta_timestamps if k not in chosen.keys]
        if unknown:
            raise KeyError(f"delta_timestamps keys {unknown} are not canonical keys {list(chosen.keys)}")
        native_dt = {c: list(v) for k, v in delta_timestamps.items() for c in chosen.native(k)}
    try:
        base = LeRobotDataset(repo_id, root=root, delta_timestamps=native_dt, episodes=episodes, **kwargs)
    except (OSError, ValueError, KeyError, IndexError, TypeError) as e:
        raise DatasetError(f"dataset {name} cannot be read: {one_line(e)}") from e
    missing = [k for k in chosen.columns if k not in base.features]
    if missing:
        raise DatasetError(f"dataset {name} lacks {missing} of layout {chosen.name!r}")
    return LiberoDataset(base, chosen)
