"""Articulated and push skills: drawer open/close, microwave door, stove knob, plate drag (success from the env)."""

from __future__ import annotations

import numpy as np

from envs.experts.articulated import DrawerSkill, KnobSkill, horizontal_grip_rotation, opening_sign
from envs.experts.control import rotation_error
from envs.experts.door import DoorSkill
from envs.experts.push import PushSkill, push_direction
from envs.experts.registry import make_expert
from envs.experts.runner import run_episode


def test_horizontal_grip_rotation_points_fingers_into_the_drawer():
    down = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, -1.0]])  # LIBERO's start pose
    for u in (np.array([0.0, 1.0, 0.0]), np.array([0.0, -1.0, 0.0]), np.array([1.0, 0.0, 0.0])):
        r = horizontal_grip_rotation(u, down)
        np.testing.assert_allclose(r.T @ r, np.eye(3), atol=1e-9)
        assert np.isclose(np.linalg.det(r), 1.0)
        np.testing.assert_allclose(r[:, 2], -u)  # approach axis into the drawer
        assert abs(r[2, 0]) == 1.0  # closing axis vertical: the horizontal bar lies between the fingers
        # the chosen one of the two candidates is the smaller rotation
        flipped = r @ np.diag([-1.0, -1.0, 1.0])
        assert np.linalg.norm(rotation_error(r, down)) <= np.linalg.norm(rotation_error(flipped, down)) + 1e-9


def test_opening_sign_follows_libero_ranges():
    cabinet = {"default_open_ranges": [-0.16, -0.14], "default_close_ranges": [0.0, 0.005]}
    fridge = {"default_open_ranges": [2.0, 2.7], "default_close_ranges": [-0.005, 0.0]}
    assert opening_sign(cabinet) == -1.0 and opening_sign(fridge) == 1.0


def test_push_direction():
    np.testing.assert_allclose(push_direction([0.0, 0.0], [0.0, 2.0]), [0.0, 1.0])
    np.testing.assert_allclose(push_direction([1.0, 1.0], [1.0, 1.0]), [0.0, 0.0])


def _episode(suite: str, task: int, init_state: int, skill_type):
    from envs.libero.env import LiberoEnv

    env = LiberoEnv(suite, task, cameras=())
    try:
        expert = make_expert(env, allow_unsupported=True)
        assert any(isinstance(s, skill_type) for s in expert.skills)
        result = run_episode(env, init_state, expert=expert)
        return result, expert
    finally:
        env.close()


def test_turn_on_the_stove():  # libero_goal 7, ~135 steps
    result, expert = _episode("libero_goal", 7, 0, KnobSkill)
    assert result.success, f"phase {result.phase}"
    assert expert.skills[0].qpos() >= 0.5  # LIBERO's turn-on threshold (FlatStove)


def test_open_the_middle_drawer():  # libero_goal 0, ~120 steps
    result, expert = _episode("libero_goal", 0, 0, DrawerSkill)
    assert result.success, f"phase {result.phase}"
    assert expert.skills[0].qpos() < -0.14  # LIBERO's open threshold (WoodenCabinet)


def test_push_the_plate_to_the_front_of_the_stove():  # libero_goal 5, ~95 steps
    result, _ = _episode("libero_goal", 5, 0, PushSkill)
    assert result.success, f"phase {result.phase}"


def test_an_open_is_inserted_before_placing_into_a_drawer():  # libero_goal 3, no stepping
    from envs.libero.env import LiberoEnv

    env = LiberoEnv("libero_goal", 3, cameras=())
    try:
        expert = make_expert(env, allow_unsupported=True)
        assert [g.relation for g in expert.goals] == ["open", "in"]
        assert expert.goals[0].region == expert.goals[1].region
    finally:
        env.close()


def test_place_the_bowl_in_the_bottom_drawer_and_close_it():  # libero_10 3, ~290 steps
    result, expert = _episode("libero_10", 3, 0, DrawerSkill)
    assert result.success, f"phase {result.phase}"
    assert expert.skills[-1].qpos() > 0.0  # LIBERO's closed threshold (WhiteCabinet), strict


def test_close_the_microwave_door():  # libero_10 9: the door alone from the init state, ~85 steps
    from envs.experts.scene import Scene
    from envs.libero.env import LiberoEnv

    env = LiberoEnv("libero_10", 9, cameras=())
    try:
        env.reset(options={"init_state": 0})
        scene = Scene(env.raw)
        goal = next(g for g in scene.goals() if g.relation == "close")
        skill = DoorSkill(env, goal)
        skill.reset()
        assert skill.qpos() < -1.0  # the door starts wide open
        for _ in range(300):
            env.step(skill.act())
            if skill.done:
                break
        for _ in range(20):  # the retreat must not have left the door moving open
            env.step(np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, -1.0]))
        assert skill.done, skill.phase
        assert skill.qpos() > -0.005  # LIBERO's closed threshold (Microwave)
        assert scene.holds(goal)
    finally:
        env.close()
