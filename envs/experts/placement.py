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
  * several objects `on` one region site (libero_10 task 8: both moka pots, 8.2 cm octagons, on the
    15 x 15 cm cook region) are spread along the region's longer world axis, 9 cm apart in BDDL order,
    so that the second does not land on the first and both origins stay inside the site's box.
  * an `in` region inside a closed box (the microwave's heating region: walls on three sides, a roof
    14.4 cm above the floor, the door side open) cannot be reached top-down: the hand sits ~2.4 cm
    above the grip site and the arm above it. `plan_entry` finds the open side (the only horizontal
    direction whose ray from the region centre hits no wall box), yaws the held object so that it
    leads the hand into the box (a mug held by its handle: the origin 8 cm ahead of the grip site),
    stops the hand 5 mm short of the mouth, and carries the object in with its bottom 1.2 cm above the
    floor; the hand leaves the same way before rising.
Heights follow the rules measured on libero_object / libero_spatial: carry the object's bottom 6 cm
above the receptacle's top (and >= 8 cm above the grasp); `in`: release 3 cm above the rim; `on`:
lower until contact (the lowering stall ends the phase), then release.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from envs.experts.control import rot_z
from envs.experts.grasp import HAND_HALF_SPAN, HAND_HALF_WIDTH, extent_along, principal_axes, yaw_to_align
from envs.experts.scene import Extent, Goal, Region, Scene, UnsupportedTaskError

LIFT_CLEARANCE = 0.06  # object bottom above the receptacle top while carrying
MIN_LIFT = 0.08  # never lift less than this above the grasp height
RELEASE_ABOVE = {"in": 0.03, "on": 0.0}  # object bottom above the receptacle top at release
PATH_CLEARANCE = 0.02  # object bottom above any other body under the straight carrying path
SHARE_SPACING = 0.09  # origin spacing of objects sharing one `on` region (moka pots: 8.2 cm wide)
SHARE_MARGIN = 0.025  # keep shared-region aim points this far inside the region's box
ENTRY_FLOOR_GAP = 0.012  # object bottom above the enclosure floor while moving in
MOUTH_MARGIN = 0.005  # the hand footprint stays this far outside the enclosure's mouth
STAGE_GAP = 0.03  # object this far outside the mouth before it is lowered to the entry height
ALIGN_ELONGATION = 1.5  # regions longer than this ratio (long / short side) get an aligned object


@dataclass(frozen=True)
class Placement:
    eef_xy: np.ndarray  # grip-site xy over the placement point (object origin on the aim point)
    lift_z: float  # grip-site height while carrying
    release_z: float  # grip-site height at release
    yaw: float  # extra hand yaw (about world z) applied for transport and placing
    entry_xy: np.ndarray | None = None  # enclosures: eef xy in front of the mouth (None: top-down)
    entry_z: float = 0.0  # enclosures: eef height while moving in and out


def aim_point(scene: Scene, goal: Goal, region: Region | None) -> np.ndarray:
    """World xy where the object's origin should end up."""
    if region is not None:
        return region.pos[:2] + shared_offset(scene, goal, region)
    if goal.relation == "on":
        return scene.origin(goal.target)[:2]
    return scene.extent(goal.target).center[:2]  # `in` a body: its extent's centre (the basket)


def shared_offset(scene: Scene, goal: Goal, region: Region) -> np.ndarray:
    """xy offset from the region's centre for the k-th of n objects that go `on` the same region."""
    try:
        sharing = [g.obj for g in scene.goals() if g.relation == "on" and g.region == goal.region]
    except UnsupportedTaskError:
        return np.zeros(2)
    if len(sharing) < 2 or goal.obj not in sharing:
        return np.zeros(2)
    half = region.half_extent[:2]
    axis = int(np.argmax(half))
    n, k = len(sharing), sharing.index(goal.obj)
    step = min(SHARE_SPACING, 2 * max(float(half[axis]) - SHARE_MARGIN, 0.0) / (n - 1))
    offset = np.zeros(2)
    offset[axis] = (k - (n - 1) / 2) * step
    return offset


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
    if goal.relation == "in" and region is not None and owner is not None:
        entry = plan_entry(scene, goal, region, owner, eef, lift_z)
        if entry is not None:
            return entry
    return Placement(eef_xy, lift_z, release_z, yaw)


def _ray_hit(boxes: np.ndarray, start: np.ndarray, direction: np.ndarray, reach: float = 0.5) -> float:
    """Distance along a horizontal ray from `start` to the first box (AABB) it enters, inf if none."""
    t = np.linspace(0.0, reach, 251)
    pts = start[None] + t[:, None] * direction[None]  # (251, 3)
    lo, hi = boxes.min(1), boxes.max(1)  # (n, 3)
    inside = np.all((pts[:, None] >= lo[None]) & (pts[:, None] <= hi[None]), axis=2).any(1)
    return float(t[np.argmax(inside)]) if inside.any() else np.inf


def enclosure_mouth(boxes: np.ndarray, region: Region) -> tuple[np.ndarray, dict[str, float]] | None:
    """Inward unit direction of an enclosure's single open side, with its floor, roof and mouth, or None.

    `boxes`: the owner's own collision boxes (n, 8, 3). An enclosure has a roof and a floor over and
    under the region centre and walls hit by horizontal rays on exactly three of the four sides.
    """
    c = region.pos
    over = (boxes[:, :, 0].min(1) <= c[0]) & (boxes[:, :, 0].max(1) >= c[0])
    over &= (boxes[:, :, 1].min(1) <= c[1]) & (boxes[:, :, 1].max(1) >= c[1])
    roofs, floors = boxes[over & (boxes[:, :, 2].min(1) > c[2])], boxes[over & (boxes[:, :, 2].max(1) < c[2])]
    if len(roofs) == 0 or len(floors) == 0:
        return None
    dirs = [region.rot[:, 0], -region.rot[:, 0], region.rot[:, 1], -region.rot[:, 1]]
    dirs = [np.array([d[0], d[1], 0.0]) / np.linalg.norm(d[:2]) for d in dirs]
    hits = [_ray_hit(boxes, c, d) for d in dirs]
    open_sides = [i for i, h in enumerate(hits) if not np.isfinite(h)]
    if len(open_sides) != 1:
        return None
    k = open_sides[0]
    inward = -dirs[k]
    side = dirs[2] if k < 2 else dirs[0]  # a horizontal axis across the mouth
    plus, minus = hits[2:] if k < 2 else hits[:2]
    corners = boxes.reshape(-1, 3)
    facts = {
        "mouth": float((corners @ inward).min()),  # most protruding front part, along `inward`
        "floor": float(floors[:, :, 2].max()),
        "roof": float(roofs[:, :, 2].min()),
        "side_shift": float(plus - minus) / 2,  # interior centre minus region centre, along `side`
    }
    return np.concatenate([inward, side]), facts


def hand_mouth(
    boxes: np.ndarray, inward: np.ndarray, side: np.ndarray, lat: float, closing: np.ndarray
) -> float:
    """Front of the enclosure (along `inward`) over the hand's lateral span, the hand centred at `lat`.

    The microwave's control panel sticks out 2.2 cm past the door frame, but only beside the cavity.
    """
    across = np.array([-closing[1], closing[0]])
    half = abs(closing @ side[:2]) * HAND_HALF_SPAN + abs(across @ side[:2]) * HAND_HALF_WIDTH
    lat_b = boxes[:, :, :2] @ side[:2]  # (n, 8)
    near = (lat_b.min(1) < lat + half) & (lat_b.max(1) > lat - half)
    u = boxes[near][:, :, :2] @ inward[:2] if near.any() else boxes[:, :, :2] @ inward[:2]
    return float(u.min())


def plan_entry(
    scene: Scene, goal: Goal, region: Region, owner: str, eef: np.ndarray, lift_z: float
) -> Placement | None:
    """Placement through the open side of an enclosed region (the microwave), or None if not enclosed."""
    boxes = scene.body_boxes(scene.body_id(owner))
    found = enclosure_mouth(boxes, region)
    if found is None:
        return None
    axes, facts = found
    inward, side = axes[:3], axes[3:]
    obj = scene.extent(goal.obj)
    offset = scene.origin(goal.obj)[:2] - eef[:2]  # origin minus grip site
    if np.linalg.norm(offset) > 0.02:  # lead with the object: its origin ahead of the hand
        yaw = float(np.arctan2(inward[1], inward[0]) - np.arctan2(offset[1], offset[0]))
    else:  # a central grasp: fingers across the entry direction
        yaw = yaw_to_align(scene.closing_axis(), side)
    yaw = float((yaw + np.pi) % (2 * np.pi) - np.pi)
    r2 = rot_z(yaw)[:2, :2]
    rel = (obj.corners[:, :2] - eef[:2]) @ r2.T  # object corners relative to the eef, once turned
    offset = r2 @ offset
    closing = (rot_z(yaw) @ scene.closing_axis())[:2]
    across = np.array([-closing[1], closing[0]])
    hand_u = abs(closing @ inward[:2]) * HAND_HALF_SPAN + abs(across @ inward[:2]) * HAND_HALF_WIDTH
    lateral = region.pos[:2] @ side[:2] + float(
        np.clip(
            facts["side_shift"],
            -region.half_extent[:2] @ np.abs(side[:2]),
            region.half_extent[:2] @ np.abs(side[:2]),
        )
    )
    eef_lat = lateral - float(offset @ side[:2])
    eef_u = min(
        hand_mouth(boxes, inward, side, eef_lat, closing) - hand_u - MOUTH_MARGIN,
        float(region.pos[:2] @ inward[:2]) - float(offset @ inward[:2]),
    )
    eef_xy = eef_u * inward[:2] + eef_lat * side[:2]
    stage_u = facts["mouth"] - STAGE_GAP - float((rel @ inward[:2]).max())
    entry_xy = stage_u * inward[:2] + eef_lat * side[:2]
    bottom_below_eef = eef[2] - obj.bottom
    entry_z = facts["floor"] + ENTRY_FLOOR_GAP + bottom_below_eef
    release_z = facts["floor"] + 0.003 + bottom_below_eef
    return Placement(eef_xy, lift_z, release_z, yaw, entry_xy, entry_z)
