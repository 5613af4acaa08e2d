"""The scripted expert solves libero_object through 7-D OSC actions, deterministically, also via the policy protocol."""

from __future__ import annotations

import numpy as np
import pytest

from envs.experts import SUPPORTED_SUITES, UnsupportedTaskError, make_expert
from envs.experts.grasp import MAX_OPENING, footprint_clearance, plan_grasp
from envs.experts.policy import ScriptedExpertPolicy
from envs.experts.runner import run_episode
from envs.experts.scene import Extent
from vla.protocol import ProtocolError


@pytest.fixture(scope="module")
def object_env():
    from envs.libero.env import LiberoEnv

    env = LiberoEnv("libero_object", 0, cameras=())
    yield env
    env.close()


@pytest.mark.parametrize("init_state", [0, 1])
def test_expert_solves_libero_object_task0(object_env, init_state):
    result = run_episode(object_env, init_state)
    assert result.success, f"expert failed init state {init_state} in phase {result.phase}"
    assert result.steps < object_env.max_steps


def test_expert_is_deterministic_and_uses_valid_actions(object_env):
    runs = []
    for _ in range(2):
        actions: list[np.ndarray] = []
        run_episode(object_env, 3, on_step=lambda obs, a, info, out=actions: out.append(a.copy()))
        runs.append(np.stack(actions))
    assert runs[0].shape == runs[1].shape and runs[0].shape[1] == 7
    np.testing.assert_array_equal(runs[0], runs[1])
    assert np.all(np.abs(runs[0]) <= 1.0)
    assert set(np.unique(runs[0][:, 6])) <= {-1.0, 1.0}  # raw LIBERO gripper: -1 open, +1 close


def test_expert_through_policy_protocol(object_env):
    policy = ScriptedExpertPolicy([object_env])
    assert policy.spec.chunk_len == 1 and policy.spec.action_dim == 7
    policy.reset()
    obs, info = object_env.reset(options={"init_state": 2, "render": False})
    success = False
    for _ in range(object_env.max_steps):
        batch = {"observation.state": obs["observation.state"][None], "task": [obs["task"]]}
        chunk = policy.predict_chunk(batch)
        assert chunk.shape == (1, 1, 7) and chunk.dtype == np.float32
        obs, _, success, truncated, _ = object_env.step(chunk[0, 0], render=False)
        if success or truncated:
            break
    assert success
    wrong = {"observation.state": obs["observation.state"][None], "task": ["some other task"]}
    with pytest.raises(ProtocolError, match="env 0 runs"):
        policy.predict_chunk(wrong)
    two_rows = {"observation.state": np.zeros((2, 8), np.float32), "task": [obs["task"]] * 2}
    with pytest.raises(ProtocolError, match="bound to 1 envs"):
        policy.predict_chunk(two_rows)


def test_unsupported_suite_is_refused():
    class FakeEnv:
        class task:  # noqa: N801
            suite = "libero_90"

    with pytest.raises(UnsupportedTaskError, match="supported suites: " + ", ".join(SUPPORTED_SUITES)):
        make_expert(FakeEnv())


def _box(lo, hi) -> Extent:
    lo, hi = np.array(lo, float), np.array(hi, float)
    corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
    return Extent(lo, hi, corners[None])


def test_grasp_rules_on_synthetic_extents():
    y_axis = np.array([0.0, 1.0, 0.0])
    bottle = _box([-0.02, -0.02, 0.0], [0.02, 0.02, 0.15])
    g = plan_grasp(bottle, y_axis, [])
    assert g.pos[2] == pytest.approx(0.12) and g.yaw == 0.0 and not g.rim  # 3 cm below the top
    flat = _box([-0.02, -0.05, 0.0], [0.02, 0.05, 0.02])  # long along y, the closing axis: must yaw 90 deg
    g = plan_grasp(flat, y_axis, [])
    assert abs(abs(g.yaw) - np.pi / 2) < 1e-6 and g.pos[2] == pytest.approx(0.015)
    bowl = _box([-0.055, -0.055, 0.0], [0.055, 0.055, 0.05])  # wider than the opening: rim grasp
    assert MAX_OPENING < 0.11
    g = plan_grasp(bowl, y_axis, [])
    assert g.rim and np.hypot(*g.pos[:2]) == pytest.approx(0.055 - 0.012, abs=1e-6)
    # a tall neighbour right next to one rim side pushes the grasp to the other side
    wall = _box([-0.03, 0.06, 0.0], [0.03, 0.09, 0.3])
    g = plan_grasp(bowl, y_axis, [wall])
    assert g.pos[1] < 0 or abs(g.yaw) > 0
    assert footprint_clearance(np.array([0, 0, 0.02]), y_axis, [wall]) < 0  # hand overlaps the wall
