"""The scripted expert behind the shared policy protocol (`vla.protocol.Policy`).

Binding: the expert reads privileged simulator state, so the adapter is built *on* the envs it will
act in — row i of every observation batch must come from `envs[i]`:

    envs = [LiberoEnv("libero_object", t, cameras=()) for t in range(2)]
    policy = ScriptedExpertPolicy(envs)
    obs = [e.reset(options={"init_state": 0})[0] for e in envs]
    chunk = policy.predict_chunk(stack(obs))         # (2, 1, 7)

The expert is closed-loop (each action depends on the state it leads to), so a chunk holds one
action (`chunk_len = n_action_steps = 1`). It re-plans by itself at the first step of each episode
(`env.elapsed_steps == 0`), so the caller may call `reset()` before or after `env.reset()`.
The observation batch is validated (state, task) but only the task strings are used, to catch a
batch row paired with the wrong env.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from envs.experts.registry import make_expert
from envs.libero.constants import ACTION_DIM, CONTROL_HZ, STATE_DIM
from vla.protocol import TASK_KEY, PolicySpec, ProtocolError, validate_batch

POLICY_ID = "scripted_task_expert"


class ScriptedExpertPolicy:
    def __init__(self, envs: Sequence[Any]) -> None:
        if not envs:
            raise ValueError("ScriptedExpertPolicy needs at least one env to bind to")
        self.envs = list(envs)
        self.experts = [make_expert(env) for env in self.envs]
        self.spec = PolicySpec(
            policy_id=POLICY_ID,
            action_space="libero_osc_delta",
            action_dim=ACTION_DIM,
            chunk_len=1,
            state_dim=STATE_DIM,
            n_action_steps=1,
            control_hz=CONTROL_HZ,
            gripper_convention="libero_raw",
        )
        self._planned_at_start = [False] * len(self.envs)

    def reset(self) -> None:
        self._planned_at_start = [False] * len(self.envs)

    def predict_chunk(self, batch: Mapping[str, Any]) -> np.ndarray:
        b = validate_batch(self.spec, batch)
        if b != len(self.envs):
            raise ProtocolError(f"batch of {b} rows, but this expert is bound to {len(self.envs)} envs")
        chunk = np.empty((b, 1, ACTION_DIM), dtype=np.float32)
        for i, (env, expert) in enumerate(zip(self.envs, self.experts)):
            if batch[TASK_KEY][i] != env.task.language:
                raise ProtocolError(
                    f"row {i} is task {batch[TASK_KEY][i]!r} but env {i} runs {env.task.language!r}"
                )
            if env.elapsed_steps == 0:
                if not self._planned_at_start[i]:
                    expert.reset()
                    self._planned_at_start[i] = True
            else:
                self._planned_at_start[i] = False
            chunk[i, 0] = expert.act()
        return chunk
