"""LIBERO smoke test (foundation acceptance): build, reset to a fixed init state, step, image convention."""

import numpy as np
import pytest

from envs.libero import SUITES, UnknownTaskError, get_task, make_env
from envs.libero.constants import MAX_STEPS, WAIT_ACTION

RES = 256


@pytest.fixture(scope="module")
def env():
    e = make_env("libero_object", 0, resolution=RES)
    yield e
    e.close()


def test_reset_and_noop_steps(env):
    obs, info = env.reset(options={"init_state": 0})
    assert obs["observation.images.image"].shape == (RES, RES, 3)
    assert obs["observation.images.image2"].shape == (RES, RES, 3)
    assert obs["observation.images.image"].dtype == np.uint8
    assert obs["observation.state"].shape == (8,) and obs["observation.state"].dtype == np.float32
    assert obs["task"] == get_task("libero_object", 0).language
    assert env.max_steps == MAX_STEPS["libero_object"] == 280
    for _ in range(20):
        obs, reward, terminated, truncated, info = env.step(WAIT_ACTION)
    assert not terminated and not truncated and reward == 0.0
    assert info["elapsed_steps"] == 20
    # both cameras see something (not a blank buffer)
    assert obs["observation.images.image"].std() > 10 and obs["observation.images.image2"].std() > 10


def test_same_init_state_gives_same_observation(env):
    a, _ = env.reset(options={"init_state": 3, "render": False})
    b, _ = env.reset(options={"init_state": 3, "render": False})
    np.testing.assert_allclose(a["observation.state"], b["observation.state"], atol=1e-6)
    assert "observation.images.image" not in a  # render=False skips the cameras


def test_images_are_rotated_180_degrees(env):
    """Where the gripper is in the picture must match the camera projection of the grip site after a 180 degree
    rotation of the OpenGL frame (the convention of every LIBERO dataset): closing the fingers changes the
    pixels around the projected grip site in our frame, not around its unrotated or mirrored position."""
    from robosuite.utils.camera_utils import get_camera_transform_matrix, project_points_from_world_to_camera

    env.reset(options={"init_state": 0, "render": False})
    for _ in range(15):  # move the hand sideways so that a horizontal mirror is detectable too
        env.step(np.array([0, 0.8, 0, 0, 0, 0, -1.0]), render=False)
    before = env.render_camera("agentview").astype(int)
    for _ in range(12):
        env.step(np.array([0, 0, 0, 0, 0, 0, 1.0]), render=False)
    after = env.render_camera("agentview").astype(int)
    sim = env.raw.sim
    site = sim.data.site_xpos[sim.model.site_name2id("gripper0_grip_site")]
    transform = get_camera_transform_matrix(sim, "agentview", RES, RES)
    row, col = project_points_from_world_to_camera(site[None], transform, RES, RES)[0]  # top-left origin
    expected_col = RES - 1 - col  # 180 degrees = upright frame mirrored left-right
    changed_rows, changed_cols = np.nonzero(np.abs(after - before).sum(-1) > 30)
    assert len(changed_rows) > 50
    assert abs(changed_cols.mean() - expected_col) < 20
    assert abs(changed_cols.mean() - col) > 40  # not the unmirrored frame
    assert abs(changed_rows.mean() - row) < 50 and abs(changed_rows.mean() - (RES - 1 - row)) > 80


def test_bad_inputs(env):
    with pytest.raises(UnknownTaskError, match="valid suites: " + ", ".join(SUITES)):
        get_task("libero_objects", 0)
    with pytest.raises(UnknownTaskError, match=r"valid ids 0\.\.9"):
        get_task("libero_object", 10)
    with pytest.raises(UnknownTaskError, match="init state 50 out of range"):
        env.reset(options={"init_state": 50})
    env.reset(options={"init_state": 0, "render": False})
    with pytest.raises(ValueError, match="non-finite"):
        env.step(np.array([0, 0, np.nan, 0, 0, 0, -1.0]))
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros(6))
