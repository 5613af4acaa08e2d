"""Pick-and-place on libero_goal / libero_10 targets: region placement geometry and env-checked episodes."""

from __future__ import annotations

import numpy as np
import pytest

from envs.experts.placement import region_yaw
from envs.experts.runner import run_episode
from envs.experts.scene import Extent, Region


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
