"""Scripted skills for LIBERO's articulated fixtures: cabinet drawers and the stove knob.

Each skill reads the joint LIBERO judges the goal by (`Scene.articulation_joint`) and the thresholds
of `libero/envs/objects/articulated_objects.py` (`Scene.articulation_ranges`), and moves the hand
only through `osc_action`. Thresholds (object_states/base_object_states.py evaluates them per joint):
  * cabinet drawers (WoodenCabinet, WhiteCabinet, slide joints, range [-0.16, 0.01]): open when
    qpos < -0.14, closed only when qpos > 0.0 *strictly* -- a drawer at its init qpos 0.0 is not
    "closed", so closing pushes it onto its 0.01 stop;
  * flat stove knob (hinge about +z, range [-0.005, 2.1]): on when qpos >= 0.5;
  * microwave door (hinge about +z, range [-2.094, 0]): closed when qpos > -0.005.

Drawers (`DrawerSkill`): the handle is the drawer body's collision geom that sticks out furthest
along the opening direction u (the world slide axis times the sign that opens). A top-down hand
cannot reach a handle under another drawer, so the hand is turned horizontal -- fingers pointing
into the drawer (-u), closing axis vertical, the bar between the fingers -- in free space first:

    orient -> approach (10 cm in front of the handle) -> insert -> grip -> pull (along u)
    -> release -> back -> restore (start pose and top-down orientation) -> hold

Closing (measured 10/10, libero_10 task 3 states 0-9, after the bowl placement) does not use the
horizontal hand: with its closing axis vertical the hand spans ~+-10 cm and stalls on the table ~10 cm
above a bottom drawer's handle (z 0.946 on a 0.9 table); pushing the bar with a top-down hand meets
the upper drawer's handle (it sticks out 3 cm) at the cabinet face. So the closed fingers, pitched
45 deg from straight down towards the cabinet (fingertips lead, hand body trails up and back), push
the front panel beside the handle bar, on its wider side, at the bar's height, until qpos > 0.003
(reached ~0.001-0.002 when the episode succeeds; the joint stops at 0.01). When the skill starts with
the hand over the open drawer (after a placement), it first moves out along u, then down.
Stove knob (`KnobSkill`): top-down grasp of the knob's fin (its tallest geom) at the hinge axis,
fingers closing across the fin, then the hand is yawed by +1 rad about the hinge (qpos follows the
hand), released, lifted. The microwave door is `door.DoorSkill`.
"""

from __future__ import annotations

import numpy as np

from envs.experts.control import GRIPPER_CLOSE, GRIPPER_OPEN, osc_action, rot_z, rotation_error
from envs.experts.grasp import principal_axes, yaw_to_align
from envs.experts.scene import Goal, Scene, UnsupportedTaskError

POS_TOL = 0.01
ROT_TOL = 0.08  # rad
PHASE_TIMEOUT = 80  # steps; a phase that does not converge moves on
GRIP_STEPS = 12
RELEASE_STEPS = 10
PRE_HANDLE = 0.10  # pre-grasp distance in front of a drawer handle
BACK_OFF = 0.08
INSERT_DEPTH = 0.005  # grip site this far past the handle bar's centre (the bar is ~1.5 cm deep)
SLIP = 0.03  # the hand is this far ahead of the handle while pulling: the grasp slipped
MAX_RETRIES = 2
PUSH_MARGIN = 0.03  # push / pull this much past the distance the joint still has to travel
KNOB_TURN = 1.0  # rad beyond the knob's start angle (turned on at 0.5)
KNOB_BELOW_TOP = 0.015
HOVER = 0.08
PUSH_PITCH = np.pi / 4  # closing: fingers tilted this far from straight down towards the drawer


def horizontal_grip_rotation(u: np.ndarray, current: np.ndarray) -> np.ndarray:
    """Hand rotation with the fingers pointing along -u (horizontal) and the closing axis vertical.

    Column 0 of the grip site frame is the closing axis, column 2 the approach (finger) direction;
    of the two vertical closing axes, the one needing the smaller rotation is taken.
    """
    approach = -np.asarray(u, dtype=float) / np.linalg.norm(u)
    candidates = []
    for z in (1.0, -1.0):
        closing = np.array([0.0, 0.0, z])
        candidates.append(np.stack([closing, np.cross(approach, closing), approach], axis=1))
    return min(candidates, key=lambda r: np.linalg.norm(rotation_error(r, current)))


def opening_sign(ranges: dict) -> float:
    """+1 when opening increases qpos, -1 when it decreases it (from LIBERO's open/close ranges)."""
    return float(np.sign(np.mean(ranges["default_open_ranges"]) - np.mean(ranges["default_close_ranges"])))


class _Skill:
    """Shared plumbing: goal joint, phase bookkeeping, stall detection, the return to the start pose."""

    def __init__(self, env, goal: Goal) -> None:
        self.env, self.goal = env, goal
        self.scene = Scene(env.raw)
        self.joint = self.scene.articulation_joint(goal)  # raises early when there is none
        self.phase = "hold"
        self._steps, self._history = 0, []
        self.home_pos, self.home_rot = np.zeros(3), np.eye(3)

    @property
    def done(self) -> bool:
        return self.phase == "hold"

    def reset(self) -> None:
        self.scene = Scene(self.env.raw)  # a hard reset may rebuild the MuJoCo model
        self.home_pos, self.home_rot = self.scene.eef_pos(), self.scene.eef_rot()
        self._plan()

    def _plan(self) -> None:
        raise NotImplementedError

    def qpos(self) -> float:
        return self.scene.joint_qpos(self.joint)

    def _set_phase(self, phase: str) -> None:
        self.phase, self._steps, self._history = phase, 0, []

    def _stalled(self, tol: float = 0.001) -> bool:
        h = self._history
        return len(h) > 6 and float(np.linalg.norm(h[-1] - h[-4])) < tol

    def _timed_out(self) -> bool:
        return self._steps > PHASE_TIMEOUT

    def _at(self, pos: np.ndarray, rot: np.ndarray | None = None, tol: float = POS_TOL) -> bool:
        ok = np.linalg.norm(self.scene.eef_pos() - pos) < tol
        if rot is not None:
            ok = ok and np.linalg.norm(rotation_error(rot, self.scene.eef_rot())) < ROT_TOL
        return bool(ok)

    def _tick(self) -> np.ndarray:
        self._steps += 1
        eef = self.scene.eef_pos()
        self._history.append(eef)
        return eef


class DrawerSkill(_Skill):
    """Open (grip the handle, pull) or close (push the handle) one cabinet drawer."""

    def _plan(self) -> None:
        sc, m = self.scene, self.scene.model
        j = m.joint_name2id(self.joint)
        if m.jnt_type[j] != 2:
            raise UnsupportedTaskError(f"{self.joint} is not a slide joint (drawer)")
        ranges = sc.articulation_ranges(self.goal.obj)
        self.sign = opening_sign(ranges)
        self.u = self.sign * np.array(sc.data.xaxis[j])  # world direction the drawer opens
        boxes = sc.body_boxes(int(m.jnt_bodyid[j]))
        handle = boxes[np.argmax((boxes @ self.u).max(1))]
        self.handle, self._q0 = handle.mean(0), self.qpos()  # the handle moves with the drawer
        self.rot = horizontal_grip_rotation(self.u, sc.eef_rot())
        self.opening = self.goal.relation == "open"
        if not self.opening:  # push the front panel beside the handle with a top-down hand
            self.handle, self.rot = self._push_point(boxes, handle), self._push_rotation()
        # qpos to pass: a margin beyond LIBERO's threshold (open: < -0.14; close: > 0.0)
        limit = max(ranges["default_open_ranges"], key=abs) if self.opening else 0.0
        self.goal_qpos = (limit - self.sign * 0.005) if self.opening else 0.003 * self.sign * -1
        self.grip = GRIPPER_OPEN if self.opening else GRIPPER_CLOSE
        self.retries = 0
        self._set_phase("orient")

    def _push_point(self, boxes: np.ndarray, handle: np.ndarray) -> np.ndarray:
        """A point on the drawer's front panel beside the handle bar, at the bar's height.

        A horizontal hand cannot get down to a bottom drawer's handle (its closing-axis span hits the
        table), and a hand pushing the bar itself meets the handle of the drawer above at the cabinet
        face; so closing pushes the panel on the wider side of the bar, with a top-down hand.
        """
        w = np.cross(self.u, [0.0, 0.0, 1.0])
        w /= np.linalg.norm(w)
        front = float(max((b @ self.u).max() for b in boxes if not np.array_equal(b, handle)))
        pw, hw = boxes.reshape(-1, 3) @ w, handle @ w
        left, right = hw.min() - pw.min(), pw.max() - hw.max()
        lateral = (hw.min() + pw.min()) / 2 if left > right else (hw.max() + pw.max()) / 2
        centre = handle.mean(0)
        point = centre + w * (lateral - centre @ w)
        return point + self.u * (front - point @ self.u)

    def _push_rotation(self) -> np.ndarray:
        """Fingers pointing down and PUSH_PITCH into the cabinet (-u), closing axis lateral: the
        fingertips lead, the hand body trails up and back, clear of the drawer above and its handle."""
        a = -self.u * np.sin(PUSH_PITCH) - np.array([0.0, 0.0, np.cos(PUSH_PITCH)])
        a /= np.linalg.norm(a)
        current, candidates = self.scene.eef_rot(), []
        for closing in (np.cross(self.u, [0.0, 0.0, 1.0]), -np.cross(self.u, [0.0, 0.0, 1.0])):
            closing = closing / np.linalg.norm(closing)
            candidates.append(np.stack([closing, np.cross(a, closing), a], axis=1))
        return min(candidates, key=lambda r: np.linalg.norm(rotation_error(r, current)))

    def _travel(self) -> float:
        """Hand travel along u still needed for the joint to reach its goal (signed: + means along u)."""
        return (self.goal_qpos - self.qpos()) * self.sign

    def _passed(self) -> bool:
        return self._travel() <= 0 if self.opening else self._travel() >= 0

    def act(self) -> np.ndarray:
        eef = self._tick()
        rot, grip = self.rot, self.grip
        # where the handle is now (it moves with the drawer)
        handle = self.handle + self.u * (self.qpos() - self._q0) * self.sign
        if self.phase == "orient":
            target = self.home_pos
            if self._at(target, rot, 0.03) or self._timed_out():
                self._set_phase("approach")
        if self.phase == "approach":
            target = handle + self.u * PRE_HANDLE
            ahead = float((eef - handle) @ self.u)
            if ahead < PRE_HANDLE - 0.03:  # hand over the open drawer (after a placement): out first
                target = eef + self.u * (PRE_HANDLE - ahead)
            if self._at(target, rot) or self._timed_out():
                self._set_phase("insert")
        if self.phase == "insert":
            target = handle - self.u * INSERT_DEPTH if self.opening else handle + self.u * 0.015
            if self._at(target, tol=0.004) or self._stalled() or self._timed_out():
                self._set_phase("grip" if self.opening else "push")
        if self.phase == "grip":
            target, grip = handle, GRIPPER_CLOSE
            if self._steps >= GRIP_STEPS:
                self._set_phase("pull")
        if self.phase in ("pull", "push"):
            grip = GRIPPER_CLOSE
            target = handle + self.u * (self._travel() + np.sign(self._travel()) * PUSH_MARGIN)
            slipped = self.opening and float((eef - handle) @ self.u) > SLIP
            if slipped and self.retries < MAX_RETRIES:  # the handle left the fingers: grasp again
                self.retries += 1
                self._set_phase("regrasp")
            elif self._passed() or slipped or self._stalled(0.0005) or self._timed_out():
                self._set_phase("release")
        if self.phase == "regrasp":
            target, grip = eef, GRIPPER_OPEN
            if self._steps >= RELEASE_STEPS:
                self._set_phase("approach")
        if self.phase == "release":
            target, grip = eef, GRIPPER_OPEN
            if self._steps >= RELEASE_STEPS or not self.opening:
                self._set_phase("back")
        if self.phase == "back":
            target = handle + self.u * BACK_OFF
            target[2] = eef[2]
            if self._at(target, tol=0.02) or self._timed_out():
                self._set_phase("restore")
        if self.phase == "restore":
            target, rot = self.home_pos, self.home_rot
            if self._at(target, rot, 0.03) or self._timed_out():
                self._set_phase("hold")
        if self.phase == "hold":
            target, rot = eef, self.scene.eef_rot()
        return osc_action(eef, self.scene.eef_rot(), target, rot, grip)


class KnobSkill(_Skill):
    """Turn a stove knob on: grasp its fin top-down at the hinge axis, yaw the hand, let go."""

    def _plan(self) -> None:
        sc, m = self.scene, self.scene.model
        j = m.joint_name2id(self.joint)
        if m.jnt_type[j] != 3 or abs(sc.data.xaxis[j][2]) < 0.9:
            raise UnsupportedTaskError(f"{self.joint} is not a vertical hinge (knob)")
        ranges = sc.articulation_ranges(self.goal.obj)
        on = (
            ranges["default_turnon_ranges"]
            if self.goal.relation == "turnon"
            else ranges["default_turnoff_ranges"]
        )
        boxes = sc.body_boxes(int(m.jnt_bodyid[j]))
        fin = boxes[np.argmax(boxes[:, :, 2].max(1))]  # the tallest geom is the grip fin
        _, short = principal_axes(fin)
        rot0 = sc.eef_rot()
        self.rot = rot_z(yaw_to_align(rot0[:, 0], short)) @ rot0  # fingers close across the fin
        self.grasp = np.array([*sc.data.xanchor[j][:2], fin[:, 2].max() - KNOB_BELOW_TOP])
        self.axis_sign = float(np.sign(sc.data.xaxis[j][2]))
        self.goal_qpos = float(min(on) + 0.5) if self.goal.relation == "turnon" else float(max(on) - 0.2)
        self.turn = np.sign(self.goal_qpos - self.qpos()) * KNOB_TURN
        self._set_phase("approach")

    def _passed(self) -> bool:
        on = self.goal.relation == "turnon"
        return self.qpos() >= self.goal_qpos if on else self.qpos() <= self.goal_qpos

    def act(self) -> np.ndarray:
        eef = self._tick()
        rot, grip, hover = self.rot, GRIPPER_OPEN, self.grasp + [0, 0, HOVER]
        if self.phase == "approach":
            far = np.linalg.norm(eef[:2] - hover[:2]) > 0.03
            target = np.array([*hover[:2], max(hover[2], eef[2])]) if far else hover
            if self._at(hover, rot) or self._timed_out():
                self._set_phase("descend")
        if self.phase == "descend":
            target = self.grasp
            if self._at(target, tol=0.005) or self._stalled() or self._timed_out():
                self._set_phase("grip")
        if self.phase == "grip":
            target, grip = self.grasp, GRIPPER_CLOSE
            if self._steps >= GRIP_STEPS:
                self._set_phase("turn")
        if self.phase == "turn":
            target, grip = self.grasp, GRIPPER_CLOSE
            rot = rot_z(self.axis_sign * self.turn) @ self.rot
            if self._passed() or self._timed_out():
                self._set_phase("release")
        if self.phase == "release":
            target, rot = self.grasp, self.scene.eef_rot()
            if self._steps >= RELEASE_STEPS:
                self._set_phase("lift")
        if self.phase == "lift":
            target, rot = hover, self.rot
            if self._at(hover, tol=0.02) or self._timed_out():
                self._set_phase("hold")
        if self.phase == "hold":
            target = eef
        return osc_action(eef, self.scene.eef_rot(), target, rot, grip)
