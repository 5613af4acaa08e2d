"""The franky-sim reaching task of `scripts/droid_sim_demo.sh`: two instructions, two joint-space targets.

    "move to the left target"   -> RESET_JOINTS + LEFT_OFFSET   (base joint +0.6 rad, shoulder/elbow/wrist bent)
    "move to the right target"  -> RESET_JOINTS + RIGHT_OFFSET  (base joint -0.6 rad, same bend)

An episode starts at the DROID reset pose (`pion-robot` moves there) and succeeds when its final joint
configuration is within `TOLERANCE_RAD` of the instructed target on every joint (max-abs error).

`ScriptedReachPolicy` is the demonstrator: a `vla.protocol.Policy` in the `droid_joint_velocity` space that
reads the instruction from the batch's task, and plans each chunk by rolling a proportional controller
forward under DROID's action semantics (joint target per 15 Hz step = q + 0.2 v). Speeds stay under the
robot loop's default velocity cap, so the safety filter has nothing to change on the demonstrations.
`noise` adds seeded Gaussian velocity noise (recording: varied states around the nominal path). `explore` starts
every episode with one chunk of base-joint motion at that speed in a random direction (independent of the
instruction), so that the demonstrations hold many states from which only the instruction tells the way: from
the fixed reset pose alone, the direction of the first few steps is the only thing a policy must read from
language, and a small policy learns to ignore it. Load it as
`pion-robot policy=envs.droid_sim.task:ScriptedReachPolicy`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from deploy.droid import MAX_JOINT_DELTA, RESET_JOINTS, droid_spec
from vla.protocol import STATE_KEY, TASK_KEY, PolicySpec, validate_batch

LEFT = "move to the left target"
RIGHT = "move to the right target"
INSTRUCTIONS = (LEFT, RIGHT)
_BEND = np.array([0.0, 0.2, 0.0, 0.25, 0.0, -0.15, 0.0])
TARGETS: dict[str, np.ndarray] = {
    LEFT: RESET_JOINTS + _BEND + np.array([0.6, 0, 0, 0, 0, 0, 0]),
    RIGHT: RESET_JOINTS + _BEND + np.array([-0.6, 0, 0, 0, 0, 0, 0]),
}
TOLERANCE_RAD = 0.1  # success: max over joints of |q_final - q_target|


def target_for(instruction: str) -> np.ndarray:
    """The joint target of an instruction (case and surrounding whitespace ignored)."""
    key = " ".join(str(instruction).lower().split())
    if key not in TARGETS:
        raise ValueError(f"unknown instruction {instruction!r}; this task knows {list(INSTRUCTIONS)}")
    return TARGETS[key]


def joint_error(q: np.ndarray, instruction: str) -> float:
    """Max-abs joint distance (rad) of a configuration from the instruction's target."""
    return float(np.max(np.abs(np.asarray(q, dtype=np.float64)[:7] - target_for(instruction))))


def is_success(q: np.ndarray, instruction: str, tolerance: float = TOLERANCE_RAD) -> bool:
    return joint_error(q, instruction) <= tolerance


def plan_chunk(q: np.ndarray, target: np.ndarray, steps: int, gain: float, max_speed: float) -> np.ndarray:
    """(steps, 7) normalised joint velocities: v = clip(gain (target - q) / 0.2, ±max_speed), q += 0.2 v."""
    q = np.asarray(q, dtype=np.float64).copy()
    out = np.empty((steps, 7))
    for k in range(steps):
        v = np.clip(gain * (target - q) / MAX_JOINT_DELTA, -max_speed, max_speed)
        out[k] = v
        q = q + MAX_JOINT_DELTA * v
    return out


class ScriptedReachPolicy:
    """Instruction-following demonstrator for the two targets (see module docstring)."""

    def __init__(
        self,
        chunk_len: int = 16,
        n_action_steps: int = 8,
        image_size: int = 224,
        gain: float = 0.3,
        max_speed: float = 0.15,
        noise: float = 0.0,
        explore: float = 0.0,
        seed: int = 0,
    ) -> None:
        if not 0 < gain <= 1 or not 0 < max_speed <= 1 or noise < 0 or not 0 <= explore <= 1:
            raise ValueError("gain and max_speed must be in (0, 1], explore in [0, 1], noise >= 0")
        self.spec: PolicySpec = droid_spec("scripted-reach", chunk_len, n_action_steps, image_size)
        self.gain, self.max_speed, self.noise = float(gain), float(max_speed), float(noise)
        self.explore = float(explore)
        self.rng = np.random.default_rng(seed)
        self.queries = 0

    def reset(self) -> None:
        """A new episode (the next query explores); noise continues the seeded stream (reproducible per run)."""
        self.queries = 0

    def predict_chunk(self, batch: Mapping[str, Any]) -> np.ndarray:
        b = validate_batch(self.spec, batch)
        state = np.asarray(batch[STATE_KEY], dtype=np.float64)
        chunk = np.zeros((b, self.spec.chunk_len, self.spec.action_dim), dtype=np.float32)
        for i, task in enumerate(batch[TASK_KEY]):
            target = target_for(task)
            q, head = state[i, :7], np.zeros((0, 7))
            if self.explore and self.queries == 0:  # one chunk-start of motion in a random base direction
                head = np.zeros((self.spec.steps_per_query, 7))
                head[:, 0] = self.explore * self.rng.choice([-1.0, 1.0])
                q = q + MAX_JOINT_DELTA * head.sum(axis=0)
            rest = plan_chunk(q, target, self.spec.chunk_len - len(head), self.gain, self.max_speed)
            v = np.concatenate([head, rest])
            if self.noise:
                v = v + self.rng.normal(0.0, self.noise, v.shape)
            chunk[i, :, :7] = np.clip(v, -1.0, 1.0)  # gripper column: 0 (open)
        self.queries += 1
        return chunk
