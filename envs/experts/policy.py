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
batch row paired with the wrong env. This is the only adapter of the expert: `load_policy("expert",
env=env)` builds it through `expert_policy`, the episode loop (`envs.rollout`) runs it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from envs.experts.registry import make_expert
from vla.conventions import LIBERO_ACTION_DIM, LIBERO_OSC_DELTA, make_spec
from vla.protocol import TASK_KEY, ProtocolError, validate_batch

POLICY_ID = "scripted_task_expert"


class ScriptedExpertPolicy:
    """`experts[i]` (default: `make_expert(envs[i])`) acts in `envs[i]`; an expert is anything with
    `reset()`, `act() -> (7,)` and a `phase` string."""

    def __init__(
        self, envs: Sequence[Any], experts: Sequence[Any] | None = None, check_task: bool = True
    ) -> None:
        if not envs:
            raise ValueError("ScriptedExpertPolicy needs at least one env to bind to")
        self.envs = list(envs)
        self.experts = list(experts) if experts is not None else [make_expert(env) for env in self.envs]
        if len(self.experts) != len(self.envs):
            raise ValueError(f"{len(self.experts)} experts for {len(self.envs)} envs")
        self.spec = make_spec(LIBERO_OSC_DELTA, POLICY_ID, chunk_len=1, n_action_steps=1)
        self.check_task = check_task
        self._planned_at_start = [False] * len(self.envs)

    @property
    def phase(self) -> str:
        """The first expert's phase (diagnostics: where a failed episode ended)."""
        return str(self.experts[0].phase)

    def reset(self) -> None:
        self._planned_at_start = [False] * len(self.envs)

    def predict_chunk(self, batch: Mapping[str, Any]) -> np.ndarray:
        b = validate_batch(self.spec, batch)
        if b != len(self.envs):
            raise ProtocolError(f"batch of {b} rows, but this expert is bound to {len(self.envs)} envs")
        chunk = np.empty((b, 1, LIBERO_ACTION_DIM), dtype=np.float32)
        for i, (env, expert) in enumerate(zip(self.envs, self.experts)):
            if self.check_task and batch[TASK_KEY][i] != env.task.language:
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


def expert_policy(env, allow_unsupported: bool = False, check_task: bool = False) -> ScriptedExpertPolicy:
    """The registered factory of "expert": the scripted expert bound to one env. The task strings are not
    compared by default: under a language perturbation the instruction differs from the env's task."""
    return ScriptedExpertPolicy([env], [make_expert(env, allow_unsupported=allow_unsupported)], check_task)
