"""Forward kinematics of the FR3 flange from the published Denavit-Hartenberg parameters (Craig's
convention, Franka documentation "Robot and interface specifications"). Used for the workspace box."""

from __future__ import annotations

import numpy as np

# (a, d, alpha) per joint, then the flange
_DH = [
    (0.0, 0.333, 0.0),
    (0.0, 0.0, -np.pi / 2),
    (0.0, 0.316, np.pi / 2),
    (0.0825, 0.0, np.pi / 2),
    (-0.0825, 0.384, -np.pi / 2),
    (0.0, 0.0, np.pi / 2),
    (0.088, 0.0, np.pi / 2),
]
_FLANGE_D = 0.107


def _link(a: float, d: float, alpha: float, theta: float) -> np.ndarray:
    ca, sa, ct, st = np.cos(alpha), np.sin(alpha), np.cos(theta), np.sin(theta)
    return np.array(
        [[ct, -st, 0, a], [st * ca, ct * ca, -sa, -d * sa], [st * sa, ct * sa, ca, d * ca], [0, 0, 0, 1]]
    )


def fr3_flange_pose(q: np.ndarray) -> np.ndarray:
    """4x4 pose of the flange in the base frame."""
    T = np.eye(4)
    for (a, d, alpha), theta in zip(_DH, np.asarray(q, float)):
        T = T @ _link(a, d, alpha, theta)
    return T @ _link(0.0, _FLANGE_D, 0.0, 0.0)


def fr3_flange_position(q: np.ndarray) -> np.ndarray:
    return fr3_flange_pose(q)[:3, 3]
