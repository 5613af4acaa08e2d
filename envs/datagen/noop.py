"""The no-op filter of the public regenerated LIBERO datasets (OpenVLA-OFT / VLA-Adapter rule).

A step is a no-op when its 6-D motion is below 1e-4 in norm and its gripper command equals the
previous step's (the first step: motion alone decides). No-op steps are executed in the simulator
but not recorded.
"""

from __future__ import annotations

import numpy as np

NOOP_THRESHOLD = 1e-4


def is_noop(action: np.ndarray, prev_action: np.ndarray | None, threshold: float = NOOP_THRESHOLD) -> bool:
    still = float(np.linalg.norm(np.asarray(action[:6], dtype=np.float64))) < threshold
    if prev_action is None:
        return still
    return still and float(action[6]) == float(prev_action[6])


def keep_mask(actions: np.ndarray, threshold: float = NOOP_THRESHOLD) -> np.ndarray:
    """Boolean mask over a (T, 7) action sequence: True for steps to record."""
    actions = np.asarray(actions)
    return np.array([not is_noop(a, actions[i - 1] if i else None, threshold) for i, a in enumerate(actions)])
