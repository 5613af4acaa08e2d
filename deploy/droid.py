"""DROID conventions for a Franka Research 3: reset pose, joint limits and the policy check.

Keys, dimensions, the action space ("droid_joint_velocity") and the gripper convention ("close_position",
0 open / 1 closed) are defined once in `vla.conventions` and re-exported here under their DROID names.
Action (8): seven normalised joint velocities in [-1, 1] and a gripper position. Joint target per 15 Hz
step = measured q + 0.2 * v. State (8) = joint positions (7) + gripper (1).
Joint limits are the FR3 values from franka_description (`robots/fr3/joint_limits.yaml`).
"""

from __future__ import annotations

import numpy as np

from vla.conventions import (
    CLOSE_POSITION,
    DROID_ACTION_DIM,
    DROID_CONTROL_HZ,
    DROID_EXTERIOR_IMAGE,
    DROID_IMAGE_SIZE,
    DROID_JOINT_VELOCITY,
    DROID_STATE_DIM,
    DROID_WRIST_IMAGE,
    check_fits,
    make_spec,
)
from vla.protocol import PolicySpec

ACTION_SPACE = DROID_JOINT_VELOCITY
GRIPPER_CONVENTION = CLOSE_POSITION
CONTROL_HZ = DROID_CONTROL_HZ
ACTION_DIM = DROID_ACTION_DIM
STATE_DIM = DROID_STATE_DIM
IMAGE_SIZE = DROID_IMAGE_SIZE
EXTERIOR_IMAGE = DROID_EXTERIOR_IMAGE
WRIST_IMAGE = DROID_WRIST_IMAGE
MAX_JOINT_DELTA = 0.2  # rad per step for |v| = 1

RESET_JOINTS = np.array([0.0, -np.pi / 5, 0.0, -4 * np.pi / 5, 0.0, 3 * np.pi / 5, 0.0])

FR3_Q_MIN = np.array([-2.7437, -1.7837, -2.9007, -3.0421, -2.8065, 0.5445, -3.0159])
FR3_Q_MAX = np.array([2.7437, 1.7837, 2.9007, -0.1518, 2.8065, 4.5169, 3.0159])
FR3_DQ_MAX = np.array([2.62, 2.62, 2.62, 2.62, 5.26, 4.18, 5.26])
FR3_DDQ_MAX = np.full(7, 10.0)


def droid_spec(
    policy_id: str, chunk_len: int = 16, n_action_steps: int = 8, image_size: int = IMAGE_SIZE
) -> PolicySpec:
    """The PolicySpec of a DROID joint-velocity policy with one exterior and one wrist camera."""
    return make_spec(ACTION_SPACE, policy_id, chunk_len, n_action_steps, image_size=image_size)


def check_compatible(spec: PolicySpec, open_loop_steps: int) -> None:
    """Refuse to drive the arm with a policy that is not a DROID joint-velocity policy for our cameras.

    Action space, dimensions, gripper convention and cameras: `vla.conventions.check_fits` (it names both
    sides); on top, the control rate and the chunk length the loop needs.
    """
    check_fits(spec, ACTION_SPACE, where="the DROID robot loop")
    problems = []
    if spec.gripper_convention != GRIPPER_CONVENTION:
        problems.append(f"gripper_convention {spec.gripper_convention!r} != {GRIPPER_CONVENTION!r}")
    if spec.control_hz is not None and abs(spec.control_hz - CONTROL_HZ) > 1e-6:
        problems.append(f"control_hz {spec.control_hz} != {CONTROL_HZ}")
    if spec.chunk_len < open_loop_steps:
        problems.append(f"chunk_len {spec.chunk_len} < open-loop steps {open_loop_steps}")
    missing = {EXTERIOR_IMAGE, WRIST_IMAGE} - set(spec.image_shapes)
    if missing:
        problems.append(f"policy does not take images {sorted(missing)}")
    if problems:
        raise ValueError(
            f"policy {spec.policy_id!r} is not a DROID policy for this client: " + "; ".join(problems)
        )
