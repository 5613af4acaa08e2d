"""Run one scripted-expert episode on a `LiberoEnv` under the standard protocol (success from the env)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from envs.experts.registry import make_expert


@dataclass(frozen=True)
class EpisodeResult:
    suite: str
    task_id: int
    init_state: int
    success: bool
    steps: int  # policy steps executed (wait steps excluded)
    phase: str  # the expert's phase when the episode ended (diagnostics)


StepCallback = Callable[[dict, np.ndarray, dict], None]  # (observation before the step, action, info)


def run_episode(
    env,
    init_state: int,
    *,
    expert=None,
    render: bool = False,
    on_step: StepCallback | None = None,
    seed: int | None = None,
) -> EpisodeResult:
    """Reset `env` to `init_state`, let the expert act until success or the suite's step budget.

    With `render=True` every observation fed to `on_step` carries the camera images (rendered by the
    env's one render function, `LiberoEnv.render_images`), as a recorded demonstration needs.
    """
    expert = expert or make_expert(env)
    obs, info = env.reset(seed=seed, options={"init_state": init_state, "render": render})
    expert.reset()
    success, steps = bool(info["is_success"]), 0
    while not success and steps < env.max_steps:
        action = expert.act()
        next_obs, _, terminated, truncated, info = env.step(action, render=render)
        if on_step is not None:
            on_step(obs, action, info)
        obs, steps, success = next_obs, steps + 1, bool(terminated)
        if truncated:
            break
    return EpisodeResult(env.task.suite, env.task.task_id, init_state, success, steps, expert.phase)
