"""The env's fast (soft) reset gives bit-identical episodes to LIBERO's hard reset, whatever ran before."""

from __future__ import annotations

import numpy as np

from envs.experts.runner import run_episode


def _trajectory(env, init_state: int) -> np.ndarray:
    states: list[np.ndarray] = []
    run_episode(
        env, init_state, on_step=lambda obs, a, info, out=states: out.append(obs["observation.state"])
    )
    return np.stack(states)


def test_soft_reset_matches_hard_reset():
    from envs.libero.env import LiberoEnv

    soft = LiberoEnv("libero_object", 5, cameras=())
    hard = LiberoEnv("libero_object", 5, cameras=(), hard_reset=True)
    try:
        assert not soft.raw.env.hard_reset and hard.raw.env.hard_reset
        reference = _trajectory(hard, 4)
        _trajectory(soft, 7)  # leave residue (closed gripper, moved objects) from another episode
        again = _trajectory(soft, 4)
        assert reference.shape == again.shape
        np.testing.assert_array_equal(reference, again)
    finally:
        soft.close()
        hard.close()
