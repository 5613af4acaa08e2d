"""Feature-key layouts of the LeRobot datasets we train on (LIBERO and DROID), and the map to canonical keys.

LIBERO canonical keys are those of `vla.protocol` and of `lerobot/libero` (v3.0):
    observation.images.image   agentview, 180-degree rotated, (H, W, 3)
    observation.images.image2  wrist camera, same convention
    observation.state          8-D: eef pos, eef axis-angle, 2 finger qpos
    action                     7-D OSC delta, gripper -1 open / +1 close
`physical-intelligence/libero` (openpi's conversion, v2.0) stores the same data as
`image`, `wrist_image`, `state`, `actions`; community conversions (IPEC-COMMUNITY) keep the canonical keys
but name the wrist camera `observation.images.wrist_image`.

DROID canonical keys (`vla.conventions`, the `droid_joint_velocity` action space, 15 Hz):
    observation.images.exterior_image_1_left   exterior camera (left stereo image)
    observation.images.wrist_image_left        wrist camera
    observation.state                          8-D: 7 joint positions + gripper position (0 open, 1 closed)
    action                                     8-D: 7 normalised joint velocities + gripper position
Three DROID layouts are read: `pion_droid` (what `deploy/recording.py` writes: the canonical keys),
`lerobot_droid` (`lerobot/droid_1.0.1`: `exterior_1_left` / `wrist_left` cameras, state and action split
into `*.joint_position` / `*.joint_velocity` / `*.gripper_position` columns) and `openpi_droid` (openpi's
`convert_droid_data_to_lerobot.py`: bare `exterior_image_1_left`, `joint_position` + `gripper_position`,
`actions`). A canonical key stored as several columns (a tuple) is their concatenation, in order.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from vla.conventions import ACTION_KEY as ACTION
from vla.conventions import (
    DROID_ACTION_DIM,
    DROID_EXTERIOR_IMAGE,
    DROID_JOINT_VELOCITY,
    DROID_STATE_DIM,
    DROID_WRIST_IMAGE,
    LIBERO_ACTION_NAMES,
    LIBERO_IMAGE,
    LIBERO_OSC_DELTA,
    LIBERO_STATE_NAMES,
    LIBERO_WRIST_IMAGE,
)
from vla.protocol import STATE_KEY as STATE

IMAGE = LIBERO_IMAGE  # keys and names are defined once, in vla.conventions
WRIST = LIBERO_WRIST_IMAGE
CANONICAL = (IMAGE, WRIST, STATE, ACTION)
DROID_CANONICAL = (DROID_EXTERIOR_IMAGE, DROID_WRIST_IMAGE, STATE, ACTION)

STATE_NAMES = list(LIBERO_STATE_NAMES)
ACTION_NAMES = list(LIBERO_ACTION_NAMES)
DROID_STATE_NAMES = [f"joint_{i}" for i in range(7)] + ["gripper_position"]
DROID_ACTION_NAMES = [f"joint_velocity_{i}" for i in range(7)] + ["gripper_position"]

Columns = str | tuple[str, ...]


class LayoutError(ValueError):
    """A dataset's features match no known layout, or an unknown layout was requested."""


@dataclass(frozen=True)
class Layout:
    name: str
    keys: dict[str, Columns]  # canonical key -> column in this layout (a tuple: concatenated columns)
    action_space: str = LIBERO_OSC_DELTA  # vla.conventions action space of the data
    part_dims: dict[str, int] = field(default_factory=dict)  # width of each column of a concatenation

    def native(self, canonical: str) -> tuple[str, ...]:
        """The column(s) holding a canonical key, in concatenation order."""
        cols = self.keys[canonical]
        return (cols,) if isinstance(cols, str) else tuple(cols)

    @property
    def columns(self) -> list[str]:
        """Every column this layout reads."""
        return [c for k in self.keys for c in self.native(k)]

    @property
    def image_keys(self) -> tuple[str, ...]:
        """Canonical camera keys, in order (exterior / agentview first, then the wrist)."""
        return tuple(k for k in self.keys if k not in (STATE, ACTION))

    @property
    def composite(self) -> dict[str, tuple[str, ...]]:
        """Canonical keys stored as several columns."""
        return {k: self.native(k) for k in self.keys if len(self.native(k)) > 1}

    @property
    def is_droid(self) -> bool:
        return self.action_space == DROID_JOINT_VELOCITY

    @property
    def dims(self) -> dict[str, int]:
        """Expected widths of the canonical state and action."""
        if self.is_droid:
            return {STATE: DROID_STATE_DIM, ACTION: DROID_ACTION_DIM}
        return {STATE: len(STATE_NAMES), ACTION: len(ACTION_NAMES)}

    def to_canonical(self) -> dict[str, str]:
        """Single-column keys: column -> canonical key (concatenations are assembled by the loader)."""
        return {v: k for k, v in self.keys.items() if isinstance(v, str)}

    def features(self, resolution: int, use_videos: bool = True) -> dict[str, dict]:
        """LeRobotDataset `features` for data written in this layout."""
        image = {
            "dtype": "video" if use_videos else "image",
            "shape": (resolution, resolution, 3),
            "names": ["height", "width", "channels"],
        }
        names = (
            {STATE: DROID_STATE_NAMES, ACTION: DROID_ACTION_NAMES}
            if self.is_droid
            else {STATE: STATE_NAMES, ACTION: ACTION_NAMES}
        )
        out: dict[str, dict] = {self.keys[k]: dict(image) for k in self.image_keys}
        for key in (STATE, ACTION):
            cols = self.native(key)
            if len(cols) == 1:
                out[cols[0]] = {"dtype": "float32", "shape": (len(names[key]),), "names": list(names[key])}
            else:
                for c in cols:
                    out[c] = {"dtype": "float32", "shape": (self.part_dims[c],), "names": None}
        return out


def _droid(name: str, ext: str, wrist: str, state: Columns, action: Columns, dims=None) -> Layout:
    keys = {DROID_EXTERIOR_IMAGE: ext, DROID_WRIST_IMAGE: wrist, STATE: state, ACTION: action}
    return Layout(name, keys, DROID_JOINT_VELOCITY, dict(dims or {}))


LAYOUTS: dict[str, Layout] = {
    "lerobot": Layout("lerobot", {k: k for k in CANONICAL}),  # lerobot/libero, HuggingFaceVLA/libero
    "openpi": Layout("openpi", {IMAGE: "image", WRIST: "wrist_image", STATE: "state", ACTION: "actions"}),
    # community conversions (e.g. IPEC-COMMUNITY/libero_*_no_noops_lerobot): the wrist camera is `wrist_image`
    "community": Layout(
        "community", {IMAGE: IMAGE, WRIST: "observation.images.wrist_image", STATE: STATE, ACTION: ACTION}
    ),
    # deploy/recording.py (pion-robot record.enabled=true): the canonical DROID keys
    "pion_droid": _droid("pion_droid", *DROID_CANONICAL),
    # lerobot/droid_1.0.1: split state / action columns; the action is joint velocity + gripper position
    "lerobot_droid": _droid(
        "lerobot_droid",
        "observation.images.exterior_1_left",
        "observation.images.wrist_left",
        ("observation.state.joint_position", "observation.state.gripper_position"),
        ("action.joint_velocity", "action.gripper_position"),
        {
            "observation.state.joint_position": 7,
            "observation.state.gripper_position": 1,
            "action.joint_velocity": 7,
            "action.gripper_position": 1,
        },
    ),
    # openpi examples/droid/convert_droid_data_to_lerobot.py: actions = joint velocity (7) + gripper position (1)
    "openpi_droid": _droid(
        "openpi_droid",
        "exterior_image_1_left",
        "wrist_image_left",
        ("joint_position", "gripper_position"),
        "actions",
        {"joint_position": 7, "gripper_position": 1},
    ),
}

_DROID_HINTS = ("exterior", "wrist_left", "wrist_image_left", "joint_position", "joint_velocity")


def get_layout(name: str) -> Layout:
    if name not in LAYOUTS:
        raise LayoutError(f"unknown dataset layout {name!r}; valid: {', '.join(LAYOUTS)}")
    return LAYOUTS[name]


def detect_layout(feature_keys: Iterable[str], source: str = "dataset") -> Layout:
    """The layout whose columns are all present in a dataset's features.

    A DROID-looking dataset (any exterior / wrist-left / joint column) that matches no layout gets one line
    naming the columns it lacks for the closest DROID layout.
    """
    keys = set(feature_keys)
    for layout in LAYOUTS.values():
        if set(layout.columns) <= keys:
            return layout
    if any(h in k for k in keys for h in _DROID_HINTS):
        droid = [lay for lay in LAYOUTS.values() if lay.is_droid]
        best = min(droid, key=lambda lay: (len(set(lay.columns) - keys), -len(set(lay.columns) & keys)))
        missing = [c for c in best.columns if c not in keys]
        raise LayoutError(
            f"DROID {source} lacks {missing} of layout {best.name!r} (needs {best.columns}; "
            f"other DROID layouts: {', '.join(lay.name for lay in droid if lay is not best)})"
        )
    wanted = {name: sorted(layout.columns) for name, layout in LAYOUTS.items() if not layout.is_droid}
    raise LayoutError(
        f"{source} features {sorted(keys)} match no LIBERO layout (nor a DROID one); expected one of "
        f"{wanted} or a DROID layout (pion_droid, lerobot_droid, openpi_droid)"
    )
