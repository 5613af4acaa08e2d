"""The one simulation episode loop on a stand-in env (no simulator): chunk execution, conventions enforced
at the boundary (refusal before the first step, declared gripper conversion), one result type."""

from types import SimpleNamespace

import numpy as np
import pytest
from eval_test_policies import OpenCloseHold, droid_hold

from envs.rollout import EpisodeResult, run_episode
from vla.conventions import ConventionError
from vla.policies import HoldStillPolicy


class FakeEnv:
    """LiberoEnv's loop-facing API: reset/step/render_camera, task, max_steps; succeeds after `succeed_at` steps."""

    def __init__(self, max_steps: int = 10, succeed_at: int | None = None) -> None:
        self.task = SimpleNamespace(suite="libero_object", task_id=0, language="pick it")
        self.max_steps, self.succeed_at = max_steps, succeed_at
        self.actions: list[np.ndarray] = []
        self.renders: list[bool] = []

    def _obs(self, render: bool) -> dict:
        obs = {"observation.state": np.zeros(8, np.float32), "task": self.task.language}
        if render:
            for key in ("observation.images.image", "observation.images.image2"):
                obs[key] = np.zeros((4, 4, 3), np.uint8)
        return obs

    def reset(self, *, seed=None, options=None):
        self.actions, self.renders = [], []
        return self._obs(options.get("render", False)), {"is_success": False}

    def step(self, action, render=True):
        self.actions.append(np.array(action))
        self.renders.append(render)
        n = len(self.actions)
        success = self.succeed_at is not None and n >= self.succeed_at
        return self._obs(render), 0.0, success, not success and n >= self.max_steps, {"is_success": success}

    def render_camera(self, camera):
        return np.zeros((4, 4, 3), np.uint8)


class Counting(HoldStillPolicy):
    """Hold still, but the i-th query's chunk carries i in dx (to see which chunk each step came from)."""

    def __init__(self, chunk_len=4, **kw):
        super().__init__(chunk_len=chunk_len, **kw)
        self.calls = 0

    def predict_chunk(self, batch):
        chunk = super().predict_chunk(batch)
        chunk[..., 0] = self.calls + np.arange(self.spec.chunk_len) / 10
        self.calls += 1
        return chunk


def test_open_loop_steps_and_result_fields():
    env = FakeEnv(max_steps=10)
    res = run_episode(env, Counting(chunk_len=4), 3, n_action_steps=3)
    assert isinstance(res, EpisodeResult)
    assert (res.suite, res.task_id, res.init_state, res.success, res.steps, res.queries) == (
        "libero_object",
        0,
        3,
        False,
        10,
        4,
    )
    np.testing.assert_allclose(
        [a[0] for a in env.actions], [0, 0.1, 0.2, 1, 1.1, 1.2, 2, 2.1, 2.2, 3], atol=1e-6
    )
    assert res.error is None and res.frames == []


def test_success_ends_the_episode_and_ensembling_queries_every_step():
    env = FakeEnv(max_steps=10, succeed_at=5)
    res = run_episode(env, Counting(chunk_len=4), 0, temporal_ensemble=0.0)
    assert res.success and res.steps == 5 and res.queries == 5


def test_a_policy_of_another_action_space_is_refused_before_the_first_step():
    env = FakeEnv()
    with pytest.raises(ConventionError) as err:
        run_episode(env, droid_hold(), 0)
    msg = str(err.value)
    assert "droid_joint_velocity" in msg and "libero_osc_delta" in msg and "LIBERO libero_object/0" in msg
    assert env.actions == []  # nothing ran


def test_declared_gripper_convention_is_converted():
    env = FakeEnv(max_steps=3)
    res = run_episode(env, OpenCloseHold(), 0)  # emits 1.0 = open in open1_close0
    assert res.steps == 3 and all(a[-1] == -1.0 for a in env.actions)  # LIBERO: -1 = open


def test_renders_only_when_the_policy_will_look_or_when_recording():
    env = FakeEnv(max_steps=4)
    res = run_episode(env, HoldStillPolicy(chunk_len=2, image_size=4), 0)
    assert res.error is None and res.queries == 2
    assert env.renders == [False, True, False, True]  # the last step of each chunk feeds the next query
    seen = []
    run_episode(
        env, HoldStillPolicy(chunk_len=2), 0, render=True, on_step=lambda obs, a, info: seen.append(obs)
    )
    assert env.renders == [True] * 4 and all("observation.images.image" in o for o in seen)


def test_a_crashing_policy_is_a_failed_episode_with_the_reason():
    class Crash(HoldStillPolicy):
        def predict_chunk(self, batch):
            raise RuntimeError("boom")

    res = run_episode(FakeEnv(), Crash(), 0)
    assert not res.success and res.steps == 0 and res.error == "RuntimeError: boom"
