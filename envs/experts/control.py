"""The low-level control law of the scripted experts, expressed in LIBERO's 7-D OSC delta actions.

OSC_POSE maps an input of 1.0 to 5 cm / 0.5 rad per step, but a saturated command really moves the
grip site only ~1.5-2 cm per 50 ms step, so a proportional law with gain ~10 on metres converges
without overshoot. Rotation deltas are applied to the *current* orientation, so a zero command
does not hold the orientation: we servo to a fixed target rotation instead (gain ~2 on the
axis-angle error). ../shared/reference/libero.md §9.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

POS_GAIN = 10.0
ROT_GAIN = 2.0
GRIPPER_OPEN = -1.0
GRIPPER_CLOSE = 1.0


def rot_z(yaw: float) -> np.ndarray:
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def rotation_error(target: np.ndarray, current: np.ndarray) -> np.ndarray:
    """World-frame axis-angle vector that rotates `current` onto `target` (both 3x3)."""
    return Rotation.from_matrix(target @ current.T).as_rotvec()


def osc_action(
    eef_pos: np.ndarray,
    eef_rot: np.ndarray,
    target_pos: np.ndarray,
    target_rot: np.ndarray,
    gripper: float,
) -> np.ndarray:
    """One 7-D action driving the grip site towards (target_pos, target_rot), gripper command raw (-1/+1)."""
    action = np.empty(7, dtype=np.float32)
    action[:3] = np.clip(POS_GAIN * (np.asarray(target_pos) - eef_pos), -1.0, 1.0)
    action[3:6] = np.clip(ROT_GAIN * rotation_error(target_rot, eef_rot), -1.0, 1.0)
    action[6] = gripper
    return action
