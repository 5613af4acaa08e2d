"""One scripted-expert episode: the expert behind the policy protocol, run by the one episode loop.

Kept as the expert sweeps' and recorders' short-hand; the loop and the result type are
`envs.rollout.run_episode` / `envs.rollout.EpisodeResult`.
"""

from __future__ import annotations

from envs.experts.policy import ScriptedExpertPolicy
from envs.rollout import EpisodeResult, StepCallback
from envs.rollout import run_episode as _run_policy_episode

__all__ = ["EpisodeResult", "StepCallback", "run_episode"]


def run_episode(
    env,
    init_state: int,
    *,
    expert=None,
    render: bool = False,
    on_step: StepCallback | None = None,
    seed: int | None = None,
) -> EpisodeResult:
    """Reset `env` to `init_state` and let `expert` (default: `make_expert(env)`) act until success or
    the suite's step budget. `render=True` gives `on_step` observations with camera images."""
    policy = ScriptedExpertPolicy([env], None if expert is None else [expert])
    return _run_policy_episode(env, policy, init_state, render=render, on_step=on_step, reset_seed=seed)
