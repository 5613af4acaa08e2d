"""Action spaces, gripper conventions and the LIBERO / DROID constants: each defined here, once.

Every layer names conventions with these strings and reads dimensions and keys from here:
`envs.libero.constants`, `vla.data.layouts` and `deploy.droid` re-export what they need.

Action spaces (the value of `PolicySpec.action_space`):
    "libero_osc_delta"      7-D: end-effector delta (dx, dy, dz, droll, dpitch, dyaw) in [-1, 1] + gripper;
                            LIBERO's OSC controller at 20 Hz; state 8-D (eef pos, axis-angle, 2 finger qpos)
    "droid_joint_velocity"  8-D: 7 normalised joint velocities in [-1, 1] + gripper position; a Franka FR3
                            at 15 Hz; state 8-D (7 joint positions + gripper)

Gripper conventions (the value of `PolicySpec.gripper_convention`), each a map to "closedness" c in [0, 1]:
    "libero_raw"      -1 open, +1 close        (LIBERO env and datasets)       c = (v + 1) / 2
    "open1_close0"     1 open,  0 close        (OFT / VLA-Adapter targets)     c = 1 - v
    "close_position"   0 open,  1 closed       (DROID; the one DROID name)     c = v

A consumer (env, robot) declares the space and convention it executes; `check_fits` refuses a policy of
another action space before the first step, and `gripper_converter` converts a declared convention.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from vla.protocol import IMAGE_PREFIX, STATE_KEY, PolicySpec

# ---------------------------------------------------------------- names
LIBERO_OSC_DELTA = "libero_osc_delta"
DROID_JOINT_VELOCITY = "droid_joint_velocity"

LIBERO_RAW = "libero_raw"
OPEN1_CLOSE0 = "open1_close0"
CLOSE_POSITION = "close_position"
GRIPPER_CONVENTIONS = (LIBERO_RAW, OPEN1_CLOSE0, CLOSE_POSITION)

ACTION_KEY = "action"  # training batches and datasets

# ---------------------------------------------------------------- LIBERO
LIBERO_IMAGE = IMAGE_PREFIX + "image"  # agentview, rotated 180 degrees like the datasets
LIBERO_WRIST_IMAGE = IMAGE_PREFIX + "image2"  # eye-in-hand, same convention
LIBERO_CAMERA_KEYS: dict[str, str] = {"agentview": LIBERO_IMAGE, "robot0_eye_in_hand": LIBERO_WRIST_IMAGE}
LIBERO_ACTION_DIM = 7
LIBERO_STATE_DIM = 8
LIBERO_ACTION_NAMES = ("dx", "dy", "dz", "droll", "dpitch", "dyaw", "gripper")
LIBERO_STATE_NAMES = ("eef_x", "eef_y", "eef_z", "eef_ax", "eef_ay", "eef_az", "gripper_q0", "gripper_q1")
LIBERO_CONTROL_HZ = 20  # simulator control frequency
LIBERO_DATASET_FPS = 10  # what lerobot/libero declares (the sim runs at 20 Hz)
LIBERO_HOLD_ACTION = np.array([0, 0, 0, 0, 0, 0, -1], dtype=np.float32)  # no motion, gripper open

# ---------------------------------------------------------------- DROID (Franka FR3)
DROID_EXTERIOR_IMAGE = IMAGE_PREFIX + "exterior_image_1_left"
DROID_WRIST_IMAGE = IMAGE_PREFIX + "wrist_image_left"
DROID_ACTION_DIM = 8
DROID_STATE_DIM = 8
DROID_CONTROL_HZ = 15.0
DROID_IMAGE_SIZE = 224
DROID_HOLD_ACTION = np.zeros(DROID_ACTION_DIM, dtype=np.float32)  # zero velocity, gripper open


class ConventionError(ValueError):
    """A policy's action space or gripper convention does not fit the env or robot that would run it."""


@dataclass(frozen=True)
class ActionSpace:
    """What an executor of an action space expects from a policy."""

    name: str
    action_dim: int
    state_dim: int
    control_hz: float
    gripper_convention: str  # the convention the executor itself takes
    hold_action: np.ndarray  # one action that keeps the robot still with the gripper open
    image_keys: tuple[str, ...]  # the cameras the executor can provide


ACTION_SPACES: dict[str, ActionSpace] = {
    LIBERO_OSC_DELTA: ActionSpace(
        LIBERO_OSC_DELTA,
        LIBERO_ACTION_DIM,
        LIBERO_STATE_DIM,
        LIBERO_CONTROL_HZ,
        LIBERO_RAW,
        LIBERO_HOLD_ACTION,
        (LIBERO_IMAGE, LIBERO_WRIST_IMAGE),
    ),
    DROID_JOINT_VELOCITY: ActionSpace(
        DROID_JOINT_VELOCITY,
        DROID_ACTION_DIM,
        DROID_STATE_DIM,
        DROID_CONTROL_HZ,
        CLOSE_POSITION,
        DROID_HOLD_ACTION,
        (DROID_EXTERIOR_IMAGE, DROID_WRIST_IMAGE),
    ),
}


def action_space(name: str) -> ActionSpace:
    if name not in ACTION_SPACES:
        raise ConventionError(f"unknown action space {name!r}; valid: {', '.join(ACTION_SPACES)}")
    return ACTION_SPACES[name]


# ---------------------------------------------------------------- gripper conversions
def _closedness(v: np.ndarray, convention: str) -> np.ndarray:
    if convention == LIBERO_RAW:
        return (v + 1.0) / 2.0
    if convention == OPEN1_CLOSE0:
        return 1.0 - v
    if convention == CLOSE_POSITION:
        return v
    raise ConventionError(
        f"unknown gripper convention {convention!r}; valid: {', '.join(GRIPPER_CONVENTIONS)}"
    )


def _from_closedness(c: np.ndarray, convention: str) -> np.ndarray:
    if convention == LIBERO_RAW:
        return 2.0 * c - 1.0
    if convention == OPEN1_CLOSE0:
        return 1.0 - c
    if convention == CLOSE_POSITION:
        return c
    raise ConventionError(
        f"unknown gripper convention {convention!r}; valid: {', '.join(GRIPPER_CONVENTIONS)}"
    )


def convert_gripper(value: np.ndarray | float, src: str, dst: str, *, binarize: bool = False) -> np.ndarray:
    """A gripper command in convention `src` -> convention `dst` (continuous; `binarize` snaps to open/closed
    at closedness 0.5, like the reference LIBERO evaluators)."""
    c = _closedness(np.asarray(value, dtype=np.float32), src)
    if binarize:
        c = (c > 0.5).astype(np.float32)
    return _from_closedness(np.clip(c, 0.0, 1.0), dst).astype(np.float32)


def gripper_to_libero(value: np.ndarray | float, convention: str) -> np.ndarray:
    """A policy's gripper output -> LIBERO's raw command (-1 open, +1 close), binarised."""
    return convert_gripper(value, convention, LIBERO_RAW, binarize=True)


def gripper_from_libero(value: np.ndarray | float, convention: str) -> np.ndarray:
    """A raw LIBERO gripper command (-1 open, +1 close) -> another convention (training targets)."""
    return convert_gripper(np.clip(np.asarray(value, dtype=np.float32), -1.0, 1.0), LIBERO_RAW, convention)


# ---------------------------------------------------------------- the boundary check
def check_fits(spec: PolicySpec, space: str, where: str) -> ActionSpace:
    """Refuse a policy whose action space, dimensions or gripper convention `where` cannot execute.

    Raises `ConventionError` naming both sides; returns the executor's `ActionSpace` otherwise.
    """
    target = action_space(space)
    problems = []
    if spec.action_space != target.name:
        problems.append(f"action_space {spec.action_space!r} != {target.name!r}")
    elif spec.action_dim != target.action_dim:
        problems.append(f"action_dim {spec.action_dim} != {target.action_dim}")
    if spec.state_dim != target.state_dim:
        problems.append(f"state_dim {spec.state_dim} != {target.state_dim} ({STATE_KEY})")
    if spec.gripper_convention not in GRIPPER_CONVENTIONS:
        problems.append(
            f"gripper_convention {spec.gripper_convention!r} is not one of {', '.join(GRIPPER_CONVENTIONS)}"
        )
    missing = sorted(set(spec.image_shapes) - set(target.image_keys))
    if missing:
        problems.append(f"needs images {missing} but {where} provides {list(target.image_keys)}")
    if problems:
        raise ConventionError(
            f"policy {spec.policy_id!r} ({spec.action_space}, gripper {spec.gripper_convention}) cannot run in "
            f"{where} ({target.name}, gripper {target.gripper_convention}): " + "; ".join(problems)
        )
    return target


def gripper_converter(spec: PolicySpec, space: str) -> Callable[[np.ndarray], np.ndarray] | None:
    """The conversion of a chunk's gripper column from the policy's declared convention to the executor's
    (None when they agree). LIBERO targets are binarised, as every reference evaluator does."""
    target = action_space(space)
    src, dst = spec.gripper_convention, target.gripper_convention
    if src == dst:
        return None
    binarize = dst == LIBERO_RAW

    def convert(actions: np.ndarray) -> np.ndarray:
        out = np.array(actions, dtype=np.float32, copy=True)
        out[..., -1] = convert_gripper(out[..., -1], src, dst, binarize=binarize)
        return out

    return convert


def make_spec(
    space: str,
    policy_id: str,
    chunk_len: int,
    n_action_steps: int | None = None,
    *,
    image_size: int | None = None,
) -> PolicySpec:
    """The PolicySpec of a policy that acts natively in `space` (its dims, rate and gripper convention).

    Images: DROID policies take both DROID cameras (default 224 px); a LIBERO policy takes none unless
    `image_size` is given (then both LIBERO cameras).
    """
    target = action_space(space)
    if image_size is None and space == DROID_JOINT_VELOCITY:
        image_size = DROID_IMAGE_SIZE
    shapes = {key: (image_size, image_size, 3) for key in target.image_keys} if image_size else {}
    return PolicySpec(
        policy_id=policy_id,
        action_space=target.name,
        action_dim=target.action_dim,
        chunk_len=chunk_len,
        state_dim=target.state_dim,
        image_shapes=shapes,
        n_action_steps=n_action_steps,
        control_hz=target.control_hz,
        gripper_convention=target.gripper_convention,
    )
