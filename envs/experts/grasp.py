"""Top-down grasp planning from object extents: where the grip site goes and how the hand is yawed.

Rules measured on libero_object / libero_spatial (../shared/reference/libero.md §9):
  * tall objects (bottles, cans) are held ~3 cm below their top; flat boxes as low as the fingertips
    allow (~1.5 cm above the support);
  * objects longer than the finger opening along the closing axis are yawed so that the fingers
    close across their short side (smallest yaw modulo pi, only when clearly elongated);
  * objects wider than the opening in every direction (bowls) are held by the rim: the grip site sits
    (radius - 1.2 cm) from the centre along the closing axis, one finger inside the wall;
  * the hand spans +-10.5 cm along the closing axis, ~2.4 cm above the grip site: among candidate
    yaws and rim sides we choose the one whose hand footprint keeps furthest from other bodies;
  * tall objects wider than the opening in every direction (the moka pot: 8.2 cm octagon, 13 cm tall,
    spout and handle along one axis) slip out of a rim grasp; they are held by a part of their own
    collision geometry that fits between the fingers (the pot's handle loop, 1.4 cm thick) with the
    palm above every box in the finger slab (`part_grasp`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from envs.experts.control import rot_z
from envs.experts.scene import Extent

MAX_OPENING = 0.075  # usable finger opening (max ~7.8-8 cm)
HAND_HALF_SPAN = 0.105  # hand body half length along the closing axis
HAND_HALF_WIDTH = 0.03  # hand body half thickness across the closing axis
HAND_ABOVE_GRIP = 0.024  # hand body bottom above the grip site
GRASP_BELOW_TOP = 0.03
MIN_ABOVE_SUPPORT = 0.015
RIM_INSET = 0.012
ELONGATION = 1.25
SAFE_CLEARANCE = 0.02  # clearances beyond this are all equally good
SHIFT_MARGIN = 0.02  # keep the grasp this far inside the object's ends
FINGER_HALF_WIDTH = 0.012  # finger pads' half width across the closing axis
FINGER_BELOW_GRIP = 0.015  # fingertips below the grip site
PALM_HALF_WIDTH = 0.025  # hand half thickness across the closing axis, for a part grasp's own object
TALL_RATIO = 1.3  # height / narrowest width beyond which a too-wide object gets a part grasp


@dataclass(frozen=True)
class GraspPlan:
    pos: np.ndarray  # grip-site target (world)
    yaw: float  # rotation about world z applied to the start orientation
    clearance: float  # smallest distance from the hand footprint to another body (m)
    rim: bool


def principal_axes(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit long and short horizontal axes of a point set (PCA in xy)."""
    xy = points[:, :2] - points[:, :2].mean(0)
    _, vecs = np.linalg.eigh(xy.T @ xy)
    short, long_ = vecs[:, 0], vecs[:, 1]
    return np.append(long_, 0.0), np.append(short, 0.0)


def extent_along(points: np.ndarray, axis: np.ndarray) -> float:
    proj = points[:, :2] @ axis[:2]
    return float(proj.max() - proj.min())


def _wrap_half_pi(yaw: float) -> float:
    """Smallest equivalent yaw modulo pi (the gripper is symmetric under a half turn)."""
    return float((yaw + np.pi / 2) % np.pi - np.pi / 2)


def yaw_to_align(axis_from: np.ndarray, axis_to: np.ndarray) -> float:
    ang = np.arctan2(axis_to[1], axis_to[0]) - np.arctan2(axis_from[1], axis_from[0])
    return _wrap_half_pi(ang)


def footprint_clearance(pos: np.ndarray, closing: np.ndarray, obstacles: list[Extent]) -> float:
    """Horizontal gap between the hand footprint and the nearest obstacle reaching the hand's height.

    The footprint is a rectangle +-HAND_HALF_SPAN along the closing axis, +-HAND_HALF_WIDTH across;
    each obstacle is boxed in the same frame. Negative when they overlap.
    """
    hand_z = pos[2] + HAND_ABOVE_GRIP
    across = np.array([-closing[1], closing[0]])
    frame = np.stack([closing[:2], across])  # (2, 2)
    half = np.array([HAND_HALF_SPAN, HAND_HALF_WIDTH])
    best = np.inf
    for ob in obstacles:
        for box in ob.boxes:  # geom by geom: a hollow basket or an open drawer is not a solid block
            if box[:, 2].max() < hand_z:
                continue
            local = (box[:, :2] - pos[:2]) @ frame.T  # (8, 2)
            lo, hi = local.min(0), local.max(0)
            gaps = np.maximum(np.maximum(lo - half, -half - hi), 0.0)
            gap = (
                float(np.hypot(*gaps))
                if np.any(gaps > 0)
                else -float(np.min(np.minimum(hi + half, half - lo)))
            )
            best = min(best, gap)
    return float(best)


def plan_grasp(obj: Extent, closing0: np.ndarray, obstacles: list[Extent], lead: bool = False) -> GraspPlan:
    """Choose the grasp for `obj`, starting from a hand whose closing axis is `closing0` (world).

    `lead`: the object must lead the hand into an enclosure (the microwave), so a too-wide object is
    held by its outermost graspable part (a mug's handle) with the hand clear of the rest of it.
    """
    long_ax, short_ax = principal_axes(obj.corners)
    long_len, short_len = extent_along(obj.corners, long_ax), extent_along(obj.corners, short_ax)
    z = max(obj.bottom + MIN_ABOVE_SUPPORT, obj.top - GRASP_BELOW_TOP)
    centre = np.array([*obj.center[:2], z])
    candidates: list[tuple[float, GraspPlan]] = []

    if short_len > MAX_OPENING and (lead or obj.size[2] > TALL_RATIO * short_len):
        plan = part_grasp(obj, closing0, obstacles, outermost=lead)
        if plan is not None:
            return plan
    if short_len > MAX_OPENING:  # bowl-like: rim grasp, try yaws and both sides
        radius = min(long_len, short_len) / 2
        for yaw in np.deg2rad([0, 30, -30, 60, -60, 90]):
            closing = rot_z(yaw) @ closing0
            for side in (1.0, -1.0):
                pos = centre + side * (radius - RIM_INSET) * closing * np.array([1, 1, 0])
                clear = footprint_clearance(pos, closing, obstacles)
                score = min(clear, SAFE_CLEARANCE) - 0.01 * abs(yaw)
                candidates.append((score, GraspPlan(pos, float(yaw), clear, True)))
        return max(candidates, key=lambda c: c[0])[1]

    if long_len >= MAX_OPENING * 0.9 and long_len > ELONGATION * short_len:
        yaws = [yaw_to_align(closing0, short_ax)]  # fingers must close across the short side
    else:  # small enough either way: prefer no rotation, but dodge neighbours if needed
        yaws = [0.0, np.pi / 4, -np.pi / 4, np.pi / 2]
    max_shift = max(long_len / 2 - SHIFT_MARGIN, 0.0)
    shifts = [s for s in (0.0, 0.01, -0.01, 0.02, -0.02, 0.03, -0.03) if abs(s) <= max_shift]
    for yaw in yaws:
        closing = rot_z(yaw) @ closing0
        for shift in shifts:
            pos = centre + shift * long_ax
            clear = footprint_clearance(pos, closing, obstacles)
            score = min(clear, SAFE_CLEARANCE) - 0.001 * abs(yaw) - 0.1 * abs(shift)
            candidates.append((score, GraspPlan(pos, float(yaw), clear, False)))
    return max(candidates, key=lambda c: c[0])[1]


def _intervals(boxes: np.ndarray, pos: np.ndarray, closing: np.ndarray) -> np.ndarray:
    """Per box (n, 3, 2): [lo, hi] along the closing axis, across it, and in z, relative to `pos`."""
    across = np.array([-closing[1], closing[0], 0.0])
    rel = boxes - pos
    proj = np.stack([rel @ closing, rel @ across, rel[..., 2]], -1)  # (n, 8, 3)
    return np.stack([proj.min(1), proj.max(1)], -1)


def part_fit(obj: Extent, pos_xy: np.ndarray, closing: np.ndarray, clear_body: bool = False) -> float | None:
    """Grip-site height at which the fingers close around the part of `obj` under `pos_xy`, or None.

    The part is every collision box in the finger slab (+-FINGER_HALF_WIDTH across the closing axis);
    the palm (HAND_ABOVE_GRIP above the grip site) must clear the slab's highest box and every box
    under the hand's footprint, and the slab's boxes at finger height must fit in the opening.
    `clear_body`: no box outside the slab may lie under the palm at all (the hand stays beside it).
    """
    closing = np.array([closing[0], closing[1], 0.0]) / np.linalg.norm(closing[:2])
    iv = _intervals(obj.boxes, np.array([*pos_xy, 0.0]), closing)
    in_slab = (iv[:, 1, 0] < FINGER_HALF_WIDTH) & (iv[:, 1, 1] > -FINGER_HALF_WIDTH)
    in_slab &= (iv[:, 0, 0] < MAX_OPENING / 2) & (iv[:, 0, 1] > -MAX_OPENING / 2)
    if not in_slab.any():
        return None
    z = float(iv[in_slab, 2, 1].max()) - HAND_ABOVE_GRIP + 0.004
    if z < obj.bottom + MIN_ABOVE_SUPPORT:
        return None
    band = in_slab & (iv[:, 2, 1] > z - FINGER_BELOW_GRIP) & (iv[:, 2, 0] < z + HAND_ABOVE_GRIP)
    if not band.any() or iv[band, 0, 0].min() < -MAX_OPENING / 2 or iv[band, 0, 1].max() > MAX_OPENING / 2:
        return None
    held = band & (iv[:, 0, 0] < 0.005) & (iv[:, 0, 1] > -0.005)  # something between the fingers
    if not held.any():
        return None
    high = (iv[:, 2, 1] > z + HAND_ABOVE_GRIP) | (clear_body & ~in_slab)
    under_palm = high & (iv[:, 1, 0] < PALM_HALF_WIDTH) & (iv[:, 1, 1] > -PALM_HALF_WIDTH)
    under_palm &= iv[:, 0, 0] < HAND_HALF_SPAN
    under_palm &= iv[:, 0, 1] > -HAND_HALF_SPAN
    if under_palm.any():
        return None
    return z


def part_grasp(
    obj: Extent, closing0: np.ndarray, obstacles: list[Extent], outermost: bool = False
) -> GraspPlan | None:
    """Grasp a part of a too-wide object (a handle): the feasible box centre nearest the middle, or
    with `outermost` the farthest one, with the hand beside (not over) the rest of the object."""
    candidates: list[tuple[float, GraspPlan]] = []
    for box in obj.boxes:
        xy = box[:, :2].mean(0)
        for yaw in np.deg2rad([0, 45, -45, 90]):
            closing = rot_z(yaw) @ closing0
            z = part_fit(obj, xy, closing, clear_body=outermost)
            if z is None:
                continue
            pos = np.array([*xy, z])
            clear = footprint_clearance(pos, closing, obstacles)
            dist = float(np.linalg.norm(xy - obj.center[:2]))
            score = min(clear, SAFE_CLEARANCE) + 0.5 * (dist if outermost else -dist)
            candidates.append((score, GraspPlan(pos, float(yaw), clear, False)))
    return max(candidates, key=lambda c: c[0])[1] if candidates else None
