"""Load a LIBERO LeRobotDataset in either public layout and serve items under the canonical keys.

    ds = load_libero_dataset("lerobot/libero", root="/data/libero",
                             delta_timestamps={"action": [0.0, 0.1, 0.2]})
    item = ds[0]   # keys: observation.images.image, observation.images.image2, observation.state,
                   #       action (+ action_is_pad), task, and the bookkeeping keys (index, ...)

`delta_timestamps` is given in canonical keys and translated to the dataset's own keys.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from vla.data.layouts import Layout, detect_layout, get_layout


class LiberoDataset(Dataset):
    """A `LeRobotDataset` whose items are renamed to the canonical LIBERO keys."""

    def __init__(self, base, layout: Layout) -> None:
        self.base = base
        self.layout = layout
        self._rename = layout.to_canonical()

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

    def _canonical(self, key: str) -> str:
        if key in self._rename:
            return self._rename[key]
        for suffix in ("_is_pad",):
            if key.endswith(suffix) and key[: -len(suffix)] in self._rename:
                return self._rename[key[: -len(suffix)]] + suffix
        return key

    def __getitem__(self, idx: int) -> dict[str, Any]:
        return {self._canonical(k): v for k, v in self.base[idx].items()}


def _read_feature_keys(root: Path) -> list[str]:
    import json

    info = root / "meta" / "info.json"
    if not info.is_file():
        raise FileNotFoundError(f"{root} is not a LeRobot dataset (no meta/info.json)")
    return list(json.loads(info.read_text())["features"])


def load_libero_dataset(
    repo_id: str,
    root: str | Path | None = None,
    *,
    layout: str = "auto",
    delta_timestamps: Mapping[str, Sequence[float]] | None = None,
    episodes: list[int] | None = None,
    **kwargs: Any,
) -> LiberoDataset:
    """Open a LIBERO dataset (local `root`, or the HF cache for `repo_id`) in layout `auto|lerobot|openpi`."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset, LeRobotDatasetMetadata

    if root is not None:
        root = Path(root)
        chosen = detect_layout(_read_feature_keys(root)) if layout == "auto" else get_layout(layout)
    else:
        meta = LeRobotDatasetMetadata(repo_id)
        chosen = detect_layout(meta.features) if layout == "auto" else get_layout(layout)
    native_dt = None
    if delta_timestamps:
        unknown = [k for k in delta_timestamps if k not in chosen.keys]
        if unknown:
            raise KeyError(f"delta_timestamps keys {unknown} are not canonical keys {list(chosen.keys)}")
        native_dt = {chosen.keys[k]: list(v) for k, v in delta_timestamps.items()}
    base = LeRobotDataset(repo_id, root=root, delta_timestamps=native_dt, episodes=episodes, **kwargs)
    missing = [k for k in chosen.keys.values() if k not in base.features]
    if missing:
        raise KeyError(f"dataset at {root or repo_id} lacks {missing} of layout {chosen.name!r}")
    return LiberoDataset(base, chosen)
