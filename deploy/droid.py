"""DROID conventions for a Franka Research 3: keys, action semantics, reset pose and joint limits.

Action (8): seven normalised joint velocities in [-1, 1] and a gripper position (0 open, 1 closed).
Joint target per 15 Hz step = measured q + 0.2 * v. State (8) = joint positions (7) + gripper (1).
Joint limits are the FR3 values from franka_description (`robots/fr3/joint_limits.yaml`).
"""

from __future__ import annotations

import numpy as np

from vla.protocol import IMAGE_PREFIX, PolicySpec

ACTION_SPACE = "droid_joint_velocity"
GRIPPER_CONVENTION = "droid_position_0open_1closed"
CONTROL_HZ = 15.0
ACTION_DIM = 8
STATE_DIM = 8
MAX_JOINT_DELTA = 0.2  # rad per step for |v| = 1
IMAGE_SIZE = 224

EXTERIOR_IMAGE = IMAGE_PREFIX + "exterior_image_1_left"
WRIST_IMAGE = IMAGE_PREFIX + "wrist_image_left"

RESET_JOINTS = np.array([0.0, -np.pi / 5, 0.0, -4 * np.pi / 5, 0.0, 3 * np.pi / 5, 0.0])

FR3_Q_MIN = np.array([-2.7437, -1.7837, -2.9007, -3.0421, -2.8065, 0.5445, -3.0159])
FR3_Q_MAX = np.array([2.7437, 1.7837, 2.9007, -0.1518, 2.8065, 4.5169, 3.0159])
FR3_DQ_MAX = np.array([2.62, 2.62, 2.62, 2.62, 5.26, 4.18, 5.26])
FR3_DDQ_MAX = np.full(7, 10.0)


def droid_spec(
    policy_id: str, chunk_len: int = 16, n_action_steps: int = 8, image_size: int = IMAGE_SIZE
) -> PolicySpec:
    """The PolicySpec of a DROID joint-velocity policy with one exterior and one wrist camera."""
    shape = (image_size, image_size, 3)
    return PolicySpec(
        policy_id=policy_id,
        action_space=ACTION_SPACE,
        action_dim=ACTION_DIM,
        chunk_len=chunk_len,
        state_dim=STATE_DIM,
        image_shapes={EXTERIOR_IMAGE: shape, WRIST_IMAGE: shape},
        n_action_steps=n_action_steps,
        control_hz=CONTROL_HZ,
        gripper_convention=GRIPPER_CONVENTION,
    )


def check_compatible(spec: PolicySpec, open_loop_steps: int) -> None:
    """Refuse to drive the arm with a policy whose action semantics are not DROID joint velocity."""
    problems = []
    if spec.action_space != ACTION_SPACE:
        problems.append(f"action_space {spec.action_space!r} != {ACTION_SPACE!r}")
    if spec.action_dim != ACTION_DIM:
        problems.append(f"action_dim {spec.action_dim} != {ACTION_DIM}")
    if spec.state_dim != STATE_DIM:
        problems.append(f"state_dim {spec.state_dim} != {STATE_DIM}")
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
