"""Scripted skill for a hinged door: swing it shut by pushing its face around the hinge.

`DoorSkill` closes (or opens, by symmetry) a fixture door on a vertical hinge -- LIBERO's
microwave (`close microwave_1`, libero_10 task 9; hinge about +z, range [-2.094, 0], closed when
qpos > -0.005). Everything comes from the sim: the hinge anchor and axis (`data.xanchor/xaxis`), the
door's collision geoms (`Scene.body_boxes` of the joint's body) and the joint's qpos. The push point
rides on the door at PUSH_RADIUS of the door's reach from the hinge and at the middle of its height;
the fingertips (top-down hand, closed, wide axis along the door) stand off on the side the door
swings towards and follow the arc, re-planned every step from the current door angle:

    rise (to a safe height) -> over (above the stand-off point) -> descend -> push -> retreat -> hold

The retreat backs away along the door's normal (away from the face it pushed) and then lifts, so it
cannot pull the door open again. The skill starts from wherever the hand is (e.g. after a placement).
"""

from __future__ import annotations

import numpy as np

from envs.experts.control import GRIPPER_CLOSE, osc_action, rot_z
from envs.experts.grasp import yaw_to_align
from envs.experts.scene import Goal, Scene, UnsupportedTaskError

POS_TOL = 0.012
PHASE_TIMEOUT = 80
PUSH_TIMEOUT = 200
PUSH_RADIUS = 0.75  # fraction of the door's reach from the hinge where the fingertips push
STAND_OFF = 0.03  # grip site this far off the door face before pushing
LEAD = 0.05  # push target: this far ahead of the contact along the swing
CLEARANCE = 0.06  # above the door's top when moving over it
BACK_OFF = 0.08
CLOSED_MARGIN = 0.002  # push until the joint is this far inside LIBERO's threshold


class DoorSkill:
    """Close (or open) a door on a vertical hinge by pushing its face."""

    def __init__(self, env, goal: Goal) -> None:
        self.env, self.goal = env, goal
        self.scene = Scene(env.raw)
        self.joint = self.scene.articulation_joint(goal)
        m, j = self.scene.model, self.scene.model.joint_name2id(self.joint)
        if m.jnt_type[j] != 3 or abs(self.scene.data.xaxis[j][2]) < 0.9:  # raise early, at routing
            raise UnsupportedTaskError(f"{self.joint} is not a vertical hinge (door)")
        self.phase = "hold"
        self._steps = 0

    @property
    def done(self) -> bool:
        return self.phase == "hold"

    def qpos(self) -> float:
        return self.scene.joint_qpos(self.joint)

    def reset(self) -> None:
        sc = self.scene = Scene(self.env.raw)
        m = sc.model
        j = self._jid = m.joint_name2id(self.joint)
        ranges = sc.articulation_ranges(self.goal.obj)
        key = "default_close_ranges" if self.goal.relation == "close" else "default_open_ranges"
        lo, hi = (float(v) for v in ranges[key][:2])
        # the side of the range the joint has to reach, with a margin inside it
        self.towards = 1.0 if self.qpos() < lo else -1.0
        self.goal_qpos = lo + CLOSED_MARGIN if self.towards > 0 else hi - CLOSED_MARGIN
        self.rot0 = sc.eef_rot()
        boxes = sc.body_boxes(int(m.jnt_bodyid[j])).reshape(-1, 3)
        anchor, axis = np.array(sc.data.xanchor[j]), np.array(sc.data.xaxis[j])
        rel = boxes - anchor
        radial = rel - np.outer(rel @ axis, axis)
        self.reach = float(np.linalg.norm(radial, axis=1).max())
        self.z_mid = float((boxes[:, 2].min() + boxes[:, 2].max()) / 2)
        self.z_top = float(boxes[:, 2].max())
        # door-frame description of the push point: the door's radial direction now
        far = radial[np.argmax(np.linalg.norm(radial, axis=1))]
        self._dir0, self._q0 = far / np.linalg.norm(far), self.qpos()
        self.half_thick = self._thickness(rel)
        self.phase, self._steps = "rise", 0

    def _thickness(self, rel: np.ndarray) -> float:
        n = self._normal(self._dir0)
        return float(np.ptp(rel @ n) / 2)

    def _hinge(self) -> tuple[np.ndarray, np.ndarray]:
        d = self.scene.data
        return np.array(d.xanchor[self._jid]), np.array(d.xaxis[self._jid])

    def _normal(self, radial: np.ndarray) -> np.ndarray:
        """Unit direction a door point at `radial` moves when qpos goes the way we need."""
        _, axis = self._hinge()
        t = np.cross(axis, radial) * self.towards
        return t / np.linalg.norm(t)

    def _contact(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(push point on the door's mid-plane, swing direction there, door radial direction)."""
        anchor, axis = self._hinge()
        dq = self.qpos() - self._q0
        c, s = np.cos(dq), np.sin(dq)
        d = self._dir0
        radial = d * c + np.cross(axis, d) * s + axis * (axis @ d) * (1 - c)  # Rodrigues
        point = anchor + radial * self.reach * PUSH_RADIUS
        point[2] = self.z_mid
        return point, self._normal(radial), radial

    def _passed(self) -> bool:
        return self.qpos() >= self.goal_qpos if self.towards > 0 else self.qpos() <= self.goal_qpos

    def act(self) -> np.ndarray:
        sc = self.scene
        self._steps += 1
        eef = sc.eef_pos()
        point, t, radial = self._contact()
        rot = rot_z(yaw_to_align(self.rot0[:, 0], radial[:2])) @ self.rot0  # wide axis along the door
        stand = point - t * (self.half_thick + STAND_OFF)
        safe = max(self.z_top + CLEARANCE, eef[2])
        if self.phase == "rise":
            target = np.array([*eef[:2], safe])
            if eef[2] > self.z_top + CLEARANCE - POS_TOL or self._steps > PHASE_TIMEOUT:
                self.phase, self._steps = "over", 0
        if self.phase == "over":
            target = np.array([*stand[:2], safe])
            if np.linalg.norm(eef[:2] - stand[:2]) < POS_TOL or self._steps > PHASE_TIMEOUT:
                self.phase, self._steps = "descend", 0
        if self.phase == "descend":
            target = stand
            if np.linalg.norm(eef - stand) < POS_TOL or self._steps > PHASE_TIMEOUT:
                self.phase, self._steps = "push", 0
        if self.phase == "push":
            target = point + t * LEAD
            target[2] = self.z_mid
            if self._passed() or self._steps > PUSH_TIMEOUT:
                self.phase, self._steps = "retreat", 0
                self._away = -t
        if self.phase == "retreat":
            target = point + self._away * (self.half_thick + BACK_OFF)
            if np.linalg.norm(eef[:2] - target[:2]) < 0.02 or self._steps > PHASE_TIMEOUT:
                self.phase, self._steps = "lift", 0
        if self.phase == "lift":
            target = np.array([*eef[:2], self.z_top + CLEARANCE])
            if eef[2] > self.z_top + CLEARANCE - 0.02 or self._steps > PHASE_TIMEOUT:
                self.phase, self._steps = "hold", 0
        if self.phase == "hold":
            target, rot = eef, sc.eef_rot()
        return osc_action(eef, sc.eef_rot(), target, rot, GRIPPER_CLOSE)
