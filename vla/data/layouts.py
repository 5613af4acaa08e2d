"""Feature-key layouts of the public LeRobot LIBERO datasets, and the map to our canonical keys.

Canonical keys are those of `vla.protocol` and of `lerobot/libero` (v3.0):
    observation.images.image   agentview, 180-degree rotated, (H, W, 3)
    observation.images.image2  wrist camera, same convention
    observation.state          8-D: eef pos, eef axis-angle, 2 finger qpos
    action                     7-D OSC delta, gripper -1 open / +1 close
`physical-intelligence/libero` (openpi's conversion, v2.0) stores the same data as
`image`, `wrist_image`, `state`, `actions`; community conversions (IPEC-COMMUNITY) keep the canonical keys
but name the wrist camera `observation.images.wrist_image`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from vla.conventions import ACTION_KEY as ACTION
from vla.conventions import LIBERO_ACTION_NAMES, LIBERO_IMAGE, LIBERO_STATE_NAMES, LIBERO_WRIST_IMAGE
from vla.protocol import STATE_KEY as STATE

IMAGE = LIBERO_IMAGE  # keys and names are defined once, in vla.conventions
WRIST = LIBERO_WRIST_IMAGE
CANONICAL = (IMAGE, WRIST, STATE, ACTION)

STATE_NAMES = list(LIBERO_STATE_NAMES)
ACTION_NAMES = list(LIBERO_ACTION_NAMES)


class LayoutError(ValueError):
    """A dataset's features match no known layout, or an unknown layout was requested."""


@dataclass(frozen=True)
class Layout:
    name: str
    keys: dict[str, str]  # canonical key -> key in this layout

    def to_canonical(self) -> dict[str, str]:
        return {v: k for k, v in self.keys.items()}

    def features(self, resolution: int, use_videos: bool = True) -> dict[str, dict]:
        """LeRobotDataset `features` for data written in this layout."""
        image = {
            "dtype": "video" if use_videos else "image",
            "shape": (resolution, resolution, 3),
            "names": ["height", "width", "channels"],
        }
        return {
            self.keys[IMAGE]: dict(image),
            self.keys[WRIST]: dict(image),
            self.keys[STATE]: {"dtype": "float32", "shape": (len(STATE_NAMES),), "names": list(STATE_NAMES)},
            self.keys[ACTION]: {
                "dtype": "float32",
                "shape": (len(ACTION_NAMES),),
                "names": list(ACTION_NAMES),
            },
        }


LAYOUTS: dict[str, Layout] = {
    "lerobot": Layout("lerobot", {k: k for k in CANONICAL}),  # lerobot/libero, HuggingFaceVLA/libero
    "openpi": Layout("openpi", {IMAGE: "image", WRIST: "wrist_image", STATE: "state", ACTION: "actions"}),
    # community conversions (e.g. IPEC-COMMUNITY/libero_*_no_noops_lerobot): the wrist camera is `wrist_image`
    "community": Layout(
        "community", {IMAGE: IMAGE, WRIST: "observation.images.wrist_image", STATE: STATE, ACTION: ACTION}
    ),
}


def get_layout(name: str) -> Layout:
    if name not in LAYOUTS:
        raise LayoutError(f"unknown dataset layout {name!r}; valid: {', '.join(LAYOUTS)}")
    return LAYOUTS[name]


def detect_layout(feature_keys: Iterable[str]) -> Layout:
    """The layout whose four keys are all present in a dataset's features."""
    keys = set(feature_keys)
    for layout in LAYOUTS.values():
        if set(layout.keys.values()) <= keys:
            return layout
    wanted = {name: sorted(layout.keys.values()) for name, layout in LAYOUTS.items()}
    raise LayoutError(f"dataset features {sorted(keys)} match no LIBERO layout; expected one of {wanted}")
