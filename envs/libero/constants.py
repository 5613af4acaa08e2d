"""Every LIBERO evaluation-protocol constant, in one place (sources: ../shared/reference/libero.md §1-§3).

The standard protocol is the one OpenVLA-OFT, VLA-Adapter, openpi and VLANeXt share: 50 fixed init
states per task, 10 no-op wait steps first (not counted), then at most `MAX_STEPS[suite]` policy steps.
"""

from __future__ import annotations

from vla.conventions import (
    LIBERO_ACTION_DIM,
    LIBERO_CAMERA_KEYS,
    LIBERO_CONTROL_HZ,
    LIBERO_DATASET_FPS,
    LIBERO_HOLD_ACTION,
    LIBERO_OSC_DELTA,
    LIBERO_RAW,
    LIBERO_STATE_DIM,
)

# Max policy steps per suite (OFT / VLA-Adapter `TASK_MAX_STEPS`); lerobot uses 280 for spatial, we do not.
MAX_STEPS: dict[str, int] = {
    "libero_spatial": 220,
    "libero_object": 280,
    "libero_goal": 300,
    "libero_10": 520,
    "libero_90": 400,
}
SUITES: tuple[str, ...] = tuple(MAX_STEPS)

NUM_INIT_STATES = 50  # trials per task: init_states[0..49]
NUM_WAIT_STEPS = 10  # no-op steps after reset, while objects settle

# Keys, dimensions, rates and the hold action are defined once in vla.conventions; LIBERO names here.
WAIT_ACTION = LIBERO_HOLD_ACTION  # hold still, gripper open
ACTION_DIM = (
    LIBERO_ACTION_DIM  # [dx, dy, dz, droll, dpitch, dyaw, gripper] in [-1, 1]; gripper -1 open / +1 close
)
STATE_DIM = LIBERO_STATE_DIM  # eef pos (3) + axis-angle (3) + gripper finger qpos (2)
CONTROL_HZ = LIBERO_CONTROL_HZ  # simulator control frequency
DATASET_FPS = LIBERO_DATASET_FPS  # what lerobot/libero declares (the sim runs at 20 Hz)
ACTION_SPACE = LIBERO_OSC_DELTA
GRIPPER_CONVENTION = LIBERO_RAW

DEFAULT_RESOLUTION = 256
# Simulator camera name -> observation key (the keys of the public `lerobot/libero` dataset).
CAMERA_KEYS: dict[str, str] = LIBERO_CAMERA_KEYS
DEFAULT_CAMERAS: tuple[str, ...] = tuple(CAMERA_KEYS)

# Seeds used by the reference evaluators (OFT / VLA-Adapter: torch/numpy seed 7, env.seed(0)).
DEFAULT_SEED = 7
DEFAULT_ENV_SEED = 0
