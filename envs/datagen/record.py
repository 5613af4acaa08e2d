"""Record one scripted-expert demonstration: rendered observations and actions, no-ops removed.

Images come from `LiberoEnv.render_images` at the same point of the step as during evaluation
(after physics), so recorded data and closed-loop evaluation see identical renders.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from envs.datagen.noop import is_noop
from envs.experts.registry import make_expert
from envs.experts.runner import EpisodeResult, run_episode
from vla.data.layouts import ACTION, IMAGE, STATE, WRIST


@dataclass
class Demo:
    task: str  # the language instruction
    frames: dict[str, np.ndarray]  # canonical key -> (T, ...) array
    result: EpisodeResult
    dropped_noops: int

    @property
    def length(self) -> int:
        return len(self.frames[ACTION])


def record_demo(
    env,
    init_state: int,
    *,
    expert=None,
    seed: int | None = None,
    action_noise: float = 0.0,
    rng: np.random.Generator | None = None,
) -> Demo:
    """Run the expert from `init_state` with cameras on; keep (observation, action) pairs of non-no-op steps.

    `action_noise` (std, applied to the 6 motion dims, clipped to [-1, 1]) diversifies repeated init
    states; it needs `rng` so that a seed reproduces the episode.
    """
    if action_noise > 0 and rng is None:
        raise ValueError("action_noise > 0 needs an rng (for determinism)")
    missing = [c for c in ("agentview", "robot0_eye_in_hand") if c not in env.cameras]
    if missing:
        raise ValueError(f"recording needs both cameras; env lacks {missing}")
    rows: dict[str, list] = {IMAGE: [], WRIST: [], STATE: [], ACTION: []}
    prev: list[np.ndarray | None] = [None]
    dropped = [0]

    def on_step(obs: dict, action: np.ndarray, info: dict) -> None:
        if is_noop(action, prev[0]):
            dropped[0] += 1
        else:
            for key in (IMAGE, WRIST, STATE):
                rows[key].append(obs[key])
            rows[ACTION].append(np.asarray(action, dtype=np.float32))
        prev[0] = action

    expert = expert or make_expert(env)
    if action_noise > 0:
        expert = _NoisyExpert(expert, action_noise, rng)
    result = run_episode(env, init_state, expert=expert, render=True, on_step=on_step, seed=seed)
    frames = {k: np.stack(v) if v else np.zeros((0,)) for k, v in rows.items()}
    return Demo(env.task.language, frames, result, dropped[0])


class _NoisyExpert:
    """Wrap an expert: Gaussian noise on the motion part of each action (the gripper stays exact)."""

    def __init__(self, expert, std: float, rng: np.random.Generator) -> None:
        self.expert, self.std, self.rng = expert, std, rng

    @property
    def phase(self) -> str:
        return self.expert.phase

    def reset(self) -> None:
        self.expert.reset()

    def act(self) -> np.ndarray:
        a = self.expert.act().copy()
        a[:6] = np.clip(a[:6] + self.rng.normal(0.0, self.std, 6), -1.0, 1.0)
        return a
