"""Privileged read access to a LIBERO scene: the gripper pose, object extents, and the task's goal.

Everything here reads the MuJoCo state of LIBERO's `OffScreenRenderEnv` (`LiberoEnv.raw`) and never
writes it. Facts this relies on (../shared/reference/libero.md §9):
  * a body's origin is not its centre or base, so extents come from the axis-aligned boxes of the
    body tree's collision geoms (visual-only geoms, contype = conaffinity = 0, are skipped);
  * poses read before the 10 wait steps are pre-settle values, so read them after `env.reset()`;
  * the fingers close along column 0 of the grip site's rotation matrix.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product

import numpy as np

GRIP_SITE = "gripper0_grip_site"  # robosuite's eef site: the OSC controller acts on this frame
_CORNER_SIGNS = np.array(list(product((-1.0, 1.0), repeat=3)))  # (8, 3)


class UnsupportedTaskError(ValueError):
    """The scripted expert cannot plan this task (goal relation or scene it does not handle)."""


@dataclass(frozen=True)
class Extent:
    """World-frame extent of a body tree's collision geoms: AABB bounds and all geom-box corners."""

    lo: np.ndarray  # (3,)
    hi: np.ndarray  # (3,)
    boxes: np.ndarray  # (n_geoms, 8, 3): corners of each collision geom's box, world frame

    @property
    def corners(self) -> np.ndarray:
        """All geom-box corners, (8 * n_geoms, 3): for principal axes and footprint checks."""
        return self.boxes.reshape(-1, 3)

    @property
    def center(self) -> np.ndarray:
        return (self.lo + self.hi) / 2

    @property
    def size(self) -> np.ndarray:
        return self.hi - self.lo

    @property
    def top(self) -> float:
        return float(self.hi[2])

    @property
    def bottom(self) -> float:
        return float(self.lo[2])


@dataclass(frozen=True)
class Region:
    """A LIBERO region site (`flat_stove_1_cook_region`, `living_room_table_plate_right_region`, ...).

    LIBERO judges it against the *body origin* of the object, not its extent:
      * `in`: origin inside pos +- |rot @ size| (the lower bound 1 cm lower), no contact needed;
      * `on`: `d = rot @ (origin - pos)`, |d_xy| < size_xy and size_z - 0.005 < d_z < size_z + 0.10, plus
        contact with the parent body when the region has one (table regions have none).
    """

    name: str
    pos: np.ndarray  # (3,) site position, world
    rot: np.ndarray  # (3, 3) site rotation matrix
    size: np.ndarray  # (3,) half sizes, site frame
    owner: str | None  # body carrying the region, None for table regions

    @property
    def half_extent(self) -> np.ndarray:
        """World-axis half extents, as LIBERO's `in_box` computes them (|rot @ size|)."""
        return np.abs(self.rot @ self.size)


@dataclass(frozen=True)
class Goal:
    """One BDDL goal predicate, mapped to scene bodies.

    Pick-and-place (`in`/`on`): `obj` is the body to move, `target` the body carrying the receptacle,
    `region` the raw receptacle name (a body or a region site such as `flat_stove_1_cook_region`);
    `target` is None for a region of the table itself (`living_room_table_plate_right_region`).
    Articulated (`open`/`close`/`turnon`/`turnoff`): `obj` is the fixture body, `region` the raw name
    of the part (e.g. `wooden_cabinet_1_middle_region`), `target` is None.
    """

    relation: str  # lower-case BDDL predicate: in, on, open, close, turnon, turnoff
    obj: str
    target: str | None = None
    region: str | None = None
    predicate: tuple[str, ...] = ()  # the raw BDDL predicate, as `Scene.holds` evaluates it

    @property
    def is_pick_place(self) -> bool:
        return self.relation in PICK_PLACE_RELATIONS


PICK_PLACE_RELATIONS = ("in", "on")
ARTICULATED_RELATIONS = ("open", "close", "turnon", "turnoff")


class Scene:
    """Read-only view of one LIBERO env's simulator. Bind once per env; values are read live."""

    def __init__(self, raw_env) -> None:
        self.domain = raw_env.env  # LIBERO's BDDL domain env (robosuite ManipulationEnv)
        self.sim = self.domain.sim
        self.model = self.sim.model
        self.data = self.sim.data
        self._grip_site = self.model.site_name2id(GRIP_SITE)
        self._geoms_of_root = self._collision_geoms_by_root()

    # ------------------------------------------------------------------ gripper
    def eef_pos(self) -> np.ndarray:
        return np.array(self.data.site_xpos[self._grip_site])

    def eef_rot(self) -> np.ndarray:
        return np.array(self.data.site_xmat[self._grip_site]).reshape(3, 3)

    def closing_axis(self) -> np.ndarray:
        """World direction along which the fingers close (column 0 of the grip site frame)."""
        return self.eef_rot()[:, 0]

    # ------------------------------------------------------------------ objects
    def _collision_geoms_by_root(self) -> dict[int, np.ndarray]:
        m = self.model
        collide = (np.asarray(m.geom_contype) != 0) | (np.asarray(m.geom_conaffinity) != 0)
        roots = np.asarray(m.body_rootid)[np.asarray(m.geom_bodyid)]
        return {int(r): np.flatnonzero(collide & (roots == r)) for r in np.unique(roots)}

    def body_id(self, name: str) -> int:
        ids = self.domain.obj_body_id
        if name not in ids:
            raise UnsupportedTaskError(f"no object or fixture named {name!r}; scene has {sorted(ids)}")
        return int(ids[name])

    def names(self) -> list[str]:
        return list(self.domain.obj_body_id)

    def extent(self, name: str) -> Extent:
        root = int(self.model.body_rootid[self.body_id(name)])
        geoms = self._geoms_of_root.get(root, np.array([], dtype=int))
        if len(geoms) == 0:
            p = np.array(self.data.body_xpos[self.body_id(name)])
            return Extent(p, p, p[None, None])
        aabb = np.asarray(self.model.geom_aabb)[geoms]  # (n, 6): centre and half sizes, geom frame
        pos = np.asarray(self.data.geom_xpos)[geoms]  # (n, 3)
        rot = np.asarray(self.data.geom_xmat)[geoms].reshape(-1, 3, 3)
        local = aabb[:, None, :3] + aabb[:, None, 3:] * _CORNER_SIGNS[None]  # (n, 8, 3)
        boxes = pos[:, None, :] + np.einsum("nij,nkj->nki", rot, local)
        return Extent(boxes.min((0, 1)), boxes.max((0, 1)), boxes)

    def origin(self, name: str) -> np.ndarray:
        """A body's origin (world): what LIBERO's `in`/`on` checks compare, not the extent's centre."""
        return np.array(self.data.body_xpos[self.body_id(name)])

    def region(self, name: str | None) -> Region | None:
        """The region site called `name`, or None when `name` is a body (a plate, a basket)."""
        sites = self.domain.object_sites_dict
        if name is None or name not in sites or name in self.domain.obj_body_id:
            return None
        sid = self.model.site_name2id(name)
        owner = self._owner(name, table_ok=True)
        rot = np.array(self.data.site_xmat[sid]).reshape(3, 3)
        return Region(
            name, np.array(self.data.site_xpos[sid]), rot, np.asarray(sites[name].size, float), owner
        )

    def goals(self) -> list[Goal]:
        """Every predicate of the task's BDDL goal (a conjunction), in the file's order."""
        goals = []
        for pred in self.domain.parsed_problem["goal_state"]:
            relation = pred[0].lower()
            if relation in PICK_PLACE_RELATIONS and len(pred) == 3:
                target = self._owner(pred[2], table_ok=pred[2] in self.domain.object_sites_dict)
                goals.append(Goal(relation, self._owner(pred[1]), target, pred[2], tuple(pred)))
            elif relation in ARTICULATED_RELATIONS and len(pred) == 2:
                goals.append(Goal(relation, self._owner(pred[1]), None, pred[1], tuple(pred)))
            else:
                raise UnsupportedTaskError(f"goal predicate {pred} is not handled by the scripted experts")
        return goals

    def goal(self) -> Goal:
        """The single (relation, object, receptacle) predicate of a pick-and-place task."""
        goals = self.goals()
        if len(goals) != 1 or not goals[0].is_pick_place:
            raise UnsupportedTaskError(
                f"goal {[g.predicate for g in goals]} is not a single 'in'/'on' predicate"
            )
        return goals[0]

    def holds(self, goal: Goal) -> bool:
        """Whether one goal predicate is true now (LIBERO's own predicate code, as the success check)."""
        return bool(self.domain._eval_predicate(list(goal.predicate)))

    def _owner(self, name: str, table_ok: bool = False) -> str | None:
        """Map a region name (e.g. `basket_1_contain_region`) to the body that carries it.

        With `table_ok`, a region of a fixture that is no scene body (the table) maps to None.
        """
        if name in self.domain.obj_body_id:
            return name
        owners = [b for b in self.domain.obj_body_id if name.startswith(b + "_")]
        if not owners and table_ok:
            return None
        if not owners:
            raise UnsupportedTaskError(f"cannot map {name!r} to a scene body; bodies: {self.names()}")
        return max(owners, key=len)

    def success(self) -> bool:
        return bool(self.domain._check_success())

    # ------------------------------------------------------------------ articulation (articulated.py)
    def articulation_joint(self, goal: Goal) -> str:
        """The joint LIBERO judges an open/close/turnon goal by (object_states: a region's or a fixture's)."""
        site = self.domain.object_sites_dict.get(goal.region)
        joints = list(getattr(site, "joints", None) or []) or list(self.domain.get_object(goal.obj).joints)
        if not joints:
            raise UnsupportedTaskError(f"{goal.region or goal.obj} has no articulation joint")
        return joints[0]

    def articulation_ranges(self, obj: str) -> dict:
        """LIBERO's open/close/turnon qpos ranges of an articulated fixture (articulated_objects.py)."""
        return dict(self.domain.get_object(obj).object_properties.get("articulation", {}))

    def joint_qpos(self, joint: str) -> float:
        return float(self.data.qpos[self.model.get_joint_qpos_addr(joint)])

    def body_boxes(self, body: int) -> np.ndarray:
        """World corners (n, 8, 3) of the collision geoms of exactly one body (not its tree)."""
        m = self.model
        geoms = [g for g in self._geoms_of_root.get(int(m.body_rootid[body]), []) if m.geom_bodyid[g] == body]
        aabb = np.asarray(m.geom_aabb)[geoms]
        pos = np.asarray(self.data.geom_xpos)[geoms]
        rot = np.asarray(self.data.geom_xmat)[geoms].reshape(-1, 3, 3)
        local = aabb[:, None, :3] + aabb[:, None, 3:] * _CORNER_SIGNS[None]
        return pos[:, None, :] + np.einsum("nij,nkj->nki", rot, local)
