"""Image, state and gripper conventions, with explicit conversions (../shared/reference/libero.md §3.1-§3.2).

Images: robosuite renders in the OpenGL convention (upside down). Every LIBERO dataset and every
reference evaluator rotates both cameras by 180 degrees (`img[::-1, ::-1]`); our observations are
always the rotated images, so they match `lerobot/libero` and the RLDS data.

Gripper: the environment and the datasets use the raw LIBERO convention, -1 = open, +1 = close.
Other conventions a policy may have been trained with:
  "open1_close0": OFT / VLA-Adapter training target, 1 = open, 0 = close
  "close_position": DROID-style position in [0, 1], 0 = open, 1 = closed
"""

from __future__ import annotations

import numpy as np

GRIPPER_CONVENTIONS = ("libero_raw", "open1_close0", "close_position")


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
        [np.asarray(eef_pos, np.float32), quat_xyzw_to_axis_angle(eef_quat_xyzw), np.asarray(gripper_qpos, np.float32)],
        axis=-1,
    )


def gripper_to_libero(value: np.ndarray | float, convention: str) -> np.ndarray:
    """Convert a policy's gripper output to LIBERO's raw command (-1 open, +1 close), binarised by sign/threshold."""
    v = np.asarray(value, dtype=np.float32)
    if convention == "libero_raw":
        return np.where(v > 0, 1.0, -1.0).astype(np.float32)
    if convention == "open1_close0":  # VLA-Adapter: 2v-1, sign, flip
        return np.where(2 * v - 1 > 0, -1.0, 1.0).astype(np.float32)
    if convention == "close_position":
        return np.where(v > 0.5, 1.0, -1.0).astype(np.float32)
    raise ValueError(f"unknown gripper convention {convention!r}; valid: {GRIPPER_CONVENTIONS}")


def gripper_from_libero(value: np.ndarray | float, convention: str) -> np.ndarray:
    """Convert a raw LIBERO gripper command (-1 open, +1 close) to another convention (for training targets)."""
    v = np.clip(np.asarray(value, dtype=np.float32), -1.0, 1.0)
    if convention == "libero_raw":
        return v
    if convention == "open1_close0":
        return ((1.0 - v) / 2.0).astype(np.float32)
    if convention == "close_position":
        return ((v + 1.0) / 2.0).astype(np.float32)
    raise ValueError(f"unknown gripper convention {convention!r}; valid: {GRIPPER_CONVENTIONS}")
