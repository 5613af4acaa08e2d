"""Pick-and-place on libero_goal / libero_10 targets: region placement geometry and env-checked episodes."""

from __future__ import annotations

import numpy as np
import pytest

from envs.experts.grasp import plan_grasp
from envs.experts.placement import enclosure_mouth, region_yaw, shared_offset
from envs.experts.runner import run_episode
from envs.experts.scene import Extent, Goal, Region


def _box(lo, hi) -> Extent:
    lo, hi = np.array(lo, float), np.array(hi, float)
    corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
    return Extent(lo, hi, corners[None])


def _region(size, rot=None) -> Region:
    rot = np.eye(3) if rot is None else rot
    return Region("r", np.zeros(3), np.asarray(rot, float), np.asarray(size, float), None)


def test_region_half_extent_follows_libero_in_box():
    flipped = np.diag([1.0, -1.0, -1.0])  # the caddy's compartments are flipped sites
    r = _region([0.028, 0.062, 0.06], flipped)
    np.testing.assert_allclose(r.half_extent, [0.028, 0.062, 0.06])
    quarter = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # 90 deg about z
    np.testing.assert_allclose(_region([0.03, 0.076, 0.1], quarter).half_extent, [0.076, 0.03, 0.1])


def test_region_yaw_lays_an_elongated_object_along_a_narrow_region():
    slot = _region([0.028, 0.062, 0.06])  # long along world y
    book_along_x = _box([-0.065, -0.015, 0.0], [0.065, 0.015, 0.13])
    assert abs(abs(region_yaw(slot, "in", book_along_x)) - np.pi / 2) < 1e-6
    book_along_y = _box([-0.015, -0.065, 0.0], [0.015, 0.065, 0.13])
    assert abs(region_yaw(slot, "in", book_along_y)) < 1e-6
    assert region_yaw(slot, "on", book_along_x) == 0.0  # only `in` regions are aligned
    assert region_yaw(_region([0.05, 0.05, 0.007]), "in", book_along_x) == 0.0  # square region
    cube = _box([-0.02, -0.02, 0.0], [0.02, 0.02, 0.05])
    assert region_yaw(slot, "in", cube) == 0.0  # a round-ish object needs no turn


def _boxes(pairs) -> Extent:
    """An Extent from (lo, hi) box pairs, as Scene.extent builds it from collision geoms."""
    boxes = np.stack([_box(lo, hi).boxes[0] for lo, hi in pairs])
    return Extent(boxes.min((0, 1)), boxes.max((0, 1)), boxes)


# moka pot boxes relative to its origin (libero_10 task 8, init 0): octagon body, spout +y, handle -y
_POT = [
    ([-0.025, -0.025, -0.066], [0.025, 0.025, 0.067]),
    ([-0.025, 0.021, -0.066], [0.025, 0.031, 0.067]),
    ([-0.025, -0.035, -0.066], [0.025, -0.024, 0.067]),
    ([-0.041, -0.03, -0.066], [-0.02, 0.005, 0.067]),
    ([0.019, -0.003, -0.066], [0.04, 0.032, 0.067]),
    ([-0.041, -0.003, -0.066], [-0.018, 0.031, 0.067]),
    ([0.018, -0.032, -0.066], [0.041, 0.002, 0.067]),
    ([-0.018, 0.03, 0.018], [0.018, 0.042, 0.067]),
    ([-0.008, 0.042, 0.032], [0.008, 0.056, 0.06]),
    ([-0.01, -0.049, 0.039], [0.01, -0.034, 0.066]),
    ([-0.007, -0.072, 0.053], [0.007, -0.044, 0.067]),
    ([-0.007, -0.091, 0.039], [0.007, -0.06, 0.068]),
    ([-0.007, -0.091, 0.0], [0.007, -0.054, 0.056]),
    ([-0.007, -0.07, -0.01], [0.006, -0.046, 0.014]),
    ([-0.005, -0.005, 0.063], [0.005, 0.007, 0.086]),
]


def test_moka_pot_is_held_by_its_handle():
    pot = _boxes(_POT)
    plan = plan_grasp(pot, np.array([0.0, 1.0, 0.0]), [])
    assert not plan.rim
    assert plan.pos[1] < -0.04 and abs(plan.pos[0]) < 0.01  # on the handle side, not over the body
    closing = np.array([-np.sin(plan.yaw), np.cos(plan.yaw)])  # closing0 = +y turned by yaw
    assert abs(closing[0]) > 0.99  # fingers close across the 1.4 cm thick handle
    assert plan.pos[2] + 0.024 > 0.068  # the palm clears the handle's top


def _mug(handle_y=-1.0):
    wall = [([-0.053, -0.053, 0.0], [0.053, 0.053, 0.103])]
    handle = [
        ([-0.009, -0.088, 0.027], [0.009, -0.079, 0.085]),
        ([-0.009, -0.088, 0.073], [0.009, -0.053, 0.086]),
    ]
    if handle_y > 0:
        handle = [(np.array(lo) * [1, -1, 1], np.array(hi) * [1, -1, 1]) for lo, hi in handle]
        handle = [(np.minimum(lo, hi), np.maximum(lo, hi)) for lo, hi in handle]
    return _boxes(wall + handle)


def test_a_mug_leading_into_an_enclosure_is_held_by_its_handle():
    plan = plan_grasp(_mug(), np.array([0.0, 1.0, 0.0]), [], lead=True)
    assert not plan.rim and plan.pos[1] < -0.07
    assert plan_grasp(_mug(), np.array([0.0, 1.0, 0.0]), []).rim  # otherwise the usual rim grasp


# microwave_1_main boxes (libero_10 task 9): left wall, control panel, back, roof, floor, panel strip
_MICROWAVE = [
    ([-0.181, 0.252, 0.92], [-0.152, 0.451, 1.107]),
    ([0.055, 0.252, 0.92], [0.164, 0.451, 1.107]),
    ([-0.152, 0.421, 0.92], [0.055, 0.451, 1.107]),
    ([-0.152, 0.252, 1.088], [0.055, 0.421, 1.107]),
    ([-0.152, 0.252, 0.92], [0.055, 0.42, 0.944]),
    ([0.079, 0.23, 0.92], [0.164, 0.254, 1.107]),
]


def test_enclosure_mouth_finds_the_microwave_front():
    region = Region("heat", np.array([-0.008, 0.35, 1.016]), np.eye(3), np.array([0.12, 0.084, 0.08]), "mw")
    found = enclosure_mouth(_boxes(_MICROWAVE).boxes, region)
    assert found is not None
    axes, facts = found
    np.testing.assert_allclose(axes[:2], [0.0, 1.0])  # enter along +y (the door side is -y)
    assert facts["floor"] == pytest.approx(0.944) and facts["roof"] == pytest.approx(1.088)
    assert facts["side_shift"] == pytest.approx(-0.04, abs=0.005)  # cavity centre left of the site
    no_roof = _boxes([b for i, b in enumerate(_MICROWAVE) if i != 3]).boxes  # a basket: top-down
    assert enclosure_mouth(no_roof, region) is None


class _Goals:
    def __init__(self, goals):
        self._goals = goals

    def goals(self):
        return self._goals


def test_objects_sharing_an_on_region_are_spread_inside_it():
    cook = Region("cook", np.zeros(3), np.eye(3), np.array([0.075, 0.075, 0.002]), "stove")
    pots = [Goal("on", f"moka_pot_{k}", "stove", "cook") for k in (1, 2)]
    scene = _Goals([*pots, Goal("turnon", "stove", None, "stove")])
    a, b = shared_offset(scene, pots[0], cook), shared_offset(scene, pots[1], cook)
    assert np.linalg.norm(a - b) >= 0.085  # 8.2 cm pots side by side
    assert np.all(np.abs(a) < 0.075 - 0.02) and np.all(np.abs(b) < 0.075 - 0.02)
    np.testing.assert_allclose(shared_offset(_Goals(pots[:1]), pots[0], cook), 0.0)


def _episode(suite: str, task_id: int, init_state: int):
    from envs.experts import make_expert
    from envs.libero.env import LiberoEnv

    env = LiberoEnv(suite, task_id, cameras=())
    try:
        expert = make_expert(env, allow_unsupported=True)
        result = run_episode(env, init_state, expert=expert)
        holds = [expert.scene.holds(g) for g in expert.goals]
    finally:
        env.close()
    return result, holds


def test_bowl_on_plate_libero_goal():
    result, holds = _episode("libero_goal", 8, 0)
    assert result.success and all(holds), f"failed in phase {result.phase}, goals {holds}"


def test_two_objects_in_basket_libero_10():
    result, holds = _episode("libero_10", 0, 0)
    assert result.success and all(holds), f"failed in phase {result.phase}, goals {holds}"


@pytest.mark.slow
@pytest.mark.parametrize(("suite", "task_id"), [("libero_10", 6), ("libero_10", 5), ("libero_goal", 2)])
def test_region_targets(suite, task_id):
    """A table region (pudding right of the plate), the caddy's back compartment, the cabinet top."""
    result, holds = _episode(suite, task_id, 1)
    assert result.success and all(holds), f"failed in phase {result.phase}, goals {holds}"


def _component(suite: str, task_id: int, init_state: int) -> list[bool]:
    """Run only the pick-place goals of a task, in BDDL order; whether each holds afterwards."""
    from envs.experts.pick_place import PickPlaceExpert
    from envs.experts.scene import Scene
    from envs.libero.env import LiberoEnv

    env = LiberoEnv(suite, task_id, cameras=())
    try:
        env.reset(options={"init_state": init_state, "render": False})
        scene, steps = Scene(env.raw), 0
        goals = [g for g in scene.goals() if g.is_pick_place]
        for goal in goals:
            skill = PickPlaceExpert(env, goal)
            skill.reset()
            while not skill.done and steps < env.max_steps:
                env.step(skill.act())
                steps += 1
        for _ in range(15):  # settle with an open gripper
            env.step(np.array([0, 0, 0, 0, 0, 0, -1], np.float32))
        return [scene.holds(g) for g in goals]
    finally:
        env.close()


@pytest.mark.slow
@pytest.mark.parametrize("task_id", [8, 9])  # both moka pots on the stove; the mug into the microwave
def test_moka_pots_and_microwave_components(task_id):
    assert all(_component("libero_10", task_id, 0))
