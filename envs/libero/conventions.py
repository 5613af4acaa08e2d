"""Image, state and gripper conventions, with explicit conversions (../shared/reference/libero.md §3.1-§3.2).

Images: robosuite renders in the OpenGL convention (upside down). Every LIBERO dataset and every
reference evaluator rotates both cameras by 180 degrees (`img[::-1, ::-1]`); our observations are
always the rotated images, so they match `lerobot/libero` and the RLDS data.

Gripper: the environment and the datasets use the raw LIBERO convention, -1 = open, +1 = close. The
conventions and their conversions are defined in `vla.conventions` (re-exported here):
  "open1_close0": OFT / VLA-Adapter training target, 1 = open, 0 = close
  "close_position": DROID-style position in [0, 1], 0 = open, 1 = closed
"""

from __future__ import annotations

import numpy as np

from vla.conventions import GRIPPER_CONVENTIONS, gripper_from_libero, gripper_to_libero

__all__ = [
    "GRIPPER_CONVENTIONS",
    "gripper_from_libero",
    "gripper_to_libero",
    "libero_state",
    "quat_xyzw_to_axis_angle",
    "rotate_180",
]


def rotate_180(image: np.ndarray) -> np.ndarray:
    """OpenGL-convention render -> dataset convention (180 degree rotation), for (..., H, W, C) arrays."""
    return np.ascontiguousarray(image[..., ::-1, ::-1, :])


def quat_xyzw_to_axis_angle(quat: np.ndarray) -> np.ndarray:
    """Quaternion (x, y, z, w) -> axis-angle (3,), like robosuite's `quat2axisangle`, batched over leading dims."""
    q = np.asarray(quat, dtype=np.float64)
    w = np.clip(q[..., 3], -1.0, 1.0)
    den = np.sqrt(np.maximum(1.0 - w * w, 0.0))
    angle = 2.0 * np.arccos(w)
    safe = den > 1e-8
    scale = np.where(safe, angle / np.where(safe, den, 1.0), 0.0)
    return (q[..., :3] * scale[..., None]).astype(np.float32)


def libero_state(eef_pos: np.ndarray, eef_quat_xyzw: np.ndarray, gripper_qpos: np.ndarray) -> np.ndarray:
    """The standard 8-D state: eef position, eef axis-angle, two finger joint positions."""
    return np.concatenate(
        [
            np.asarray(eef_pos, np.float32),
            quat_xyzw_to_axis_angle(eef_quat_xyzw),
            np.asarray(gripper_qpos, np.float32),
        ],
        axis=-1,
    )
