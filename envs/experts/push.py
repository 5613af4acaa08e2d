"""A scripted drag skill: slide a flat object too wide to grasp (a plate) across the table onto a table region.

LIBERO's `on <obj> <table region>` holds when the object's body origin lies inside the region's box
(libero_goal "push the plate to the front of the stove": an 8 x 8 cm box) and the object touches
the table. The plate (13.8 cm across, 1.9 cm tall) is wider than the finger opening. Pushing it
with the closed fingers failed in both ways tried: from behind, the hand (+-10.5 cm along the
closing axis) hits the cabinet next to the plate; from inside the dish, the fingertips stop ~1.2 cm
above the floor and ride over the low, sloped rim (the plate moved < 1 cm). So the plate is held
by its rim on the goal side -- closing axis radial, one finger in the dish, one outside -- and
dragged, 1 cm lifted, by the remaining offset to the region centre (re-read every step), then
released. Phases:

    approach (above the rim point, hand yawed radially) -> descend -> grip -> drag -> release
    -> lift -> hold
"""

from __future__ import annotations

import numpy as np

from envs.experts.control import GRIPPER_CLOSE, GRIPPER_OPEN, osc_action, rot_z
from envs.experts.grasp import yaw_to_align
from envs.experts.scene import Goal, Scene

GOAL_TOL = 0.01  # stop when the object's origin is this close to the region's centre
RIM_INSET = 0.012  # grip site this far inside the rim (as for bowls, grasp.py)
ABOVE_BOTTOM = 0.008  # grip-site target above the object's bottom (the fingertips stop it ~1.2 cm up)
DRAG_LIFT = 0.01
HOVER = 0.08
POS_TOL = 0.01
GRIP_STEPS = 12
RELEASE_STEPS = 8
PHASE_TIMEOUT = 80


def push_direction(obj_xy: np.ndarray, goal_xy: np.ndarray) -> np.ndarray:
    """Unit horizontal direction from the object to the goal (zero when already there)."""
    d = np.asarray(goal_xy, float) - np.asarray(obj_xy, float)
    n = float(np.linalg.norm(d))
    return d / n if n > 1e-9 else np.zeros(2)


class PushSkill:
    """Drag `goal.obj` onto the table region `goal.region` (a site of the BDDL's table regions)."""

    def __init__(self, env, goal: Goal) -> None:
        self.env, self.goal = env, goal
        self.scene = Scene(env.raw)
        self.phase = "hold"
        self._steps, self._z = 0, []

    @property
    def done(self) -> bool:
        return self.phase == "hold"

    def reset(self) -> None:
        self.scene = Scene(self.env.raw)
        self.goal_xy = np.array(self.scene.data.get_site_xpos(self.goal.region)[:2])
        ext = self.scene.extent(self.goal.obj)
        radius = float(min(ext.size[:2]) / 2)
        obj = self._obj_xy()
        u = push_direction(obj, self.goal_xy)
        rot0 = self.scene.eef_rot()
        self.rot = rot_z(yaw_to_align(rot0[:, 0], np.append(u, 0.0))) @ rot0  # fingers close radially
        centre = ext.center[:2]
        self.grasp = np.array([*(centre + u * (radius - RIM_INSET)), ext.bottom + ABOVE_BOTTOM])
        self._set_phase("approach")

    def _set_phase(self, phase: str) -> None:
        self.phase, self._steps, self._z = phase, 0, []

    def _stalled(self, eef: np.ndarray) -> bool:
        self._z.append(float(eef[2]))
        return len(self._z) > 6 and abs(self._z[-1] - self._z[-4]) < 0.001

    def _obj_xy(self) -> np.ndarray:
        return np.array(self.scene.data.body_xpos[self.scene.body_id(self.goal.obj)][:2])

    def remaining(self) -> float:
        return float(np.linalg.norm(self.goal_xy - self._obj_xy()))

    def act(self) -> np.ndarray:
        self._steps += 1
        eef = self.scene.eef_pos()
        timed_out = self._steps > PHASE_TIMEOUT
        grip, hover = GRIPPER_OPEN, self.grasp + [0, 0, HOVER]
        if self.phase == "approach":
            far = np.linalg.norm(eef[:2] - hover[:2]) > 0.03
            target = np.array([*hover[:2], max(hover[2], eef[2])]) if far else hover
            if np.linalg.norm(eef - hover) < POS_TOL or timed_out:
                self._set_phase("descend")
        if self.phase == "descend":
            target = self.grasp
            if abs(eef[2] - self.grasp[2]) < 0.004 or self._stalled(eef) or timed_out:
                self._set_phase("grip")
        if self.phase == "grip":
            target, grip = self.grasp, GRIPPER_CLOSE
            if self._steps >= GRIP_STEPS:
                self._drag_z = eef[2] + DRAG_LIFT
                self._set_phase("drag")
        if self.phase == "drag":
            grip = GRIPPER_CLOSE
            target = np.array([*(eef[:2] + self.goal_xy - self._obj_xy()), self._drag_z])
            if self.remaining() < GOAL_TOL or self._steps > 2 * PHASE_TIMEOUT:
                self._set_phase("release")
        if self.phase == "release":
            target = np.array([*eef[:2], self._drag_z - DRAG_LIFT])
            if self._steps >= RELEASE_STEPS:
                self._set_phase("lift")
        if self.phase == "lift":
            target = np.array([*eef[:2], self.grasp[2] + HOVER])
            if eef[2] > self.grasp[2] + HOVER - 0.02 or timed_out:
                self._set_phase("hold")
        if self.phase == "hold":
            target = eef
        return osc_action(eef, self.scene.eef_rot(), target, self.rot, grip)
