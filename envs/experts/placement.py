"""Where a held object must go so that LIBERO's `in`/`on` check holds, planned once it is grasped.

LIBERO judges placements on the held object's *body origin* (not its extent's centre), against
(envs/object_states/base_object_states.py, objects/site_object.py; measured on libero_goal / libero_10):
  * a body target (`on plate_1`, `on akita_black_bowl_1`): target origin z <= object origin z,
    contact, and the two origins within 3 cm in xy -> aim the object's origin at the target's origin;
  * a region site (`flat_stove_1_cook_region`, `wooden_cabinet_1_top_side`, `wine_rack_1_top_region`,
    `basket_1_contain_region`, `desk_caddy_1_back_contain_region`, table regions such as
    `living_room_table_plate_right_region`): the origin must lie inside the site's box (`Region`), so
    aim at the site's centre. Table regions have no scene body: the support is the table, i.e. the
    height the object stood at before it was picked.
  * a narrow `in` region (the caddy's back compartment, 5.5 x 12.4 cm) only takes an elongated object
    (the upright book, ~3 x 13 cm footprint) along its long axis: the hand is yawed during transport
    so that the object's long horizontal axis lies along the region's long axis (smallest turn mod pi).
Heights follow the rules measured on libero_object / libero_spatial: carry the object's bottom 6 cm
above the receptacle's top (and >= 8 cm above the grasp); `in`: release 3 cm above the rim; `on`:
lower until contact (the lowering stall ends the phase), then release.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from envs.experts.control import rot_z
from envs.experts.grasp import extent_along, principal_axes, yaw_to_align
from envs.experts.scene import Extent, Goal, Region, Scene

LIFT_CLEARANCE = 0.06  # object bottom above the receptacle top while carrying
MIN_LIFT = 0.08  # never lift less than this above the grasp height
RELEASE_ABOVE = {"in": 0.03, "on": 0.0}  # object bottom above the receptacle top at release
PATH_CLEARANCE = 0.02  # object bottom above any other body under the straight carrying path
ALIGN_ELONGATION = 1.5  # regions longer than this ratio (long / short side) get an aligned object


@dataclass(frozen=True)
class Placement:
    eef_xy: np.ndarray  # grip-site xy over the placement point (object origin on the aim point)
    lift_z: float  # grip-site height while carrying
    release_z: float  # grip-site height at release
    yaw: float  # extra hand yaw (about world z) applied for transport and placing


def aim_point(scene: Scene, goal: Goal, region: Region | None) -> np.ndarray:
    """World xy where the object's origin should end up."""
    if region is not None:
        return region.pos[:2].copy()
    if goal.relation == "on":
        return scene.origin(goal.target)[:2]
    return scene.extent(goal.target).center[:2]  # `in` a body: its extent's centre (the basket)


def region_yaw(region: Region | None, relation: str, obj: Extent) -> float:
    """Hand yaw that lays the object's long horizontal axis along a narrow `in` region, else 0."""
    if region is None or relation != "in":
        return 0.0
    half = region.half_extent[:2]
    if half.max() < ALIGN_ELONGATION * half.min():
        return 0.0
    long_ax, short_ax = principal_axes(obj.corners)
    if extent_along(obj.corners, long_ax) < 1.2 * extent_along(obj.corners, short_ax):
        return 0.0
    region_long = np.eye(3)[int(np.argmax(half))]
    return yaw_to_align(long_ax, region_long)


def path_top(scene: Scene, exclude: str, a: np.ndarray, b: np.ndarray, half_width: float) -> float:
    """Highest top of another body whose extent comes within `half_width` of the xy segment a -> b.

    Keeps a carried object clear of objects placed earlier (the first mug on its plate) and of tall
    neighbours; fixtures count by their AABB, so a cabinet beside the path lifts the carry too.
    """
    top = -np.inf
    for name in scene.names():
        if name == exclude:
            continue
        ext = scene.extent(name)
        t = np.linspace(0.0, 1.0, 21)[:, None]
        pts = a[None] + t * (b - a)[None]  # (21, 2)
        gap = np.maximum(np.maximum(ext.lo[:2] - pts, pts - ext.hi[:2]), 0.0)
        if np.min(np.hypot(gap[:, 0], gap[:, 1])) < half_width:
            top = max(top, ext.top)
    return float(top)


def plan_placement(scene: Scene, goal: Goal, eef: np.ndarray, support_z: float) -> Placement:
    """Plan from the grasped state. `support_z`: the object's bottom before it was picked (table)."""
    obj = scene.extent(goal.obj)
    region = scene.region(goal.region)
    owner = region.owner if region is not None else goal.target
    receptacle_top = scene.extent(owner).top if owner is not None else support_z
    yaw = region_yaw(region, goal.relation, obj)
    offset = rot_z(yaw)[:2, :2] @ (scene.origin(goal.obj)[:2] - eef[:2])  # origin minus grip site
    bottom_below_eef = eef[2] - obj.bottom
    eef_xy = aim_point(scene, goal, region) - offset
    half_width = float(np.max(obj.size[:2])) / 2
    clear = max(
        receptacle_top + LIFT_CLEARANCE,
        path_top(scene, goal.obj, eef[:2], eef_xy, half_width) + PATH_CLEARANCE,
    )
    lift_z = max(clear + bottom_below_eef, eef[2] + MIN_LIFT)
    release_z = receptacle_top + RELEASE_ABOVE[goal.relation] + bottom_below_eef
    return Placement(eef_xy, lift_z, release_z, yaw)
