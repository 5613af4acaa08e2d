"""A scripted pick-and-place expert for LIBERO goals of the form (in|on, object, receptacle).

It reads privileged simulator state (`envs.experts.scene`) and acts only through the 7-D OSC delta
action space a learned policy uses. A phase machine:

    approach (hover above the grasp point, hand yawed) -> descend -> close -> lift
    -> transport (above the placement point) -> lower -> release -> retreat -> hold

Binding: `PickPlaceExpert(env)` takes a `envs.libero.env.LiberoEnv`; call `expert.reset()` after every
`env.reset()` (poses are read after the wait steps, when objects have settled), then
`env.step(expert.act())` until the env reports success or truncation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from envs.experts.control import GRIPPER_CLOSE, GRIPPER_OPEN, osc_action, rot_z
from envs.experts.grasp import GraspPlan, plan_grasp
from envs.experts.scene import Extent, Goal, Scene

HOVER_ABOVE = 0.10  # grip site above the grasp point before descending
CLOSE_STEPS = 12  # gripper closing steps before lifting (no slips measured)
RELEASE_STEPS = 10
LIFT_CLEARANCE = 0.06  # object bottom above the receptacle top while carrying
MIN_LIFT = 0.08  # never lift less than this above the grasp height
RELEASE_ABOVE = {"in": 0.03, "on": 0.0}  # object bottom above the receptacle top at release
POS_TOL = 0.01
PHASE_TIMEOUT = 60  # steps; a phase that does not converge moves on (stalls against contacts)


@dataclass
class _Plan:
    goal: Goal
    grasp: GraspPlan
    target_rot: np.ndarray  # fixed hand orientation for the whole episode
    hover_z: float
    lift_z: float = 0.0
    place_xy: np.ndarray = field(default_factory=lambda: np.zeros(2))
    release_z: float = 0.0


class PickPlaceExpert:
    phases = ("approach", "descend", "close", "lift", "transport", "lower", "release", "retreat", "hold")

    def __init__(self, env, goal: Goal | None = None) -> None:
        self.env = env
        self.goal = goal  # None: the task's single in/on goal
        self.scene = Scene(env.raw)
        self.plan: _Plan | None = None
        self.phase = "approach"
        self._phase_steps = 0
        self._history: list[np.ndarray] = []

    # ------------------------------------------------------------------ planning
    def reset(self) -> None:
        """Plan from the current (settled) scene; call after `env.reset()`."""
        self.scene = Scene(self.env.raw)  # a hard reset may rebuild the MuJoCo model
        goal = self.goal or self.scene.goal()
        obj = self.scene.extent(goal.obj)
        others = [self.scene.extent(n) for n in self.scene.names() if n != goal.obj]
        rot0 = self.scene.eef_rot()
        grasp = plan_grasp(obj, rot0[:, 0], others)
        hover_z = max(grasp.pos[2] + HOVER_ABOVE, obj.top + 0.05)
        self.plan = _Plan(goal, grasp, rot_z(grasp.yaw) @ rot0, hover_z)
        self._set_phase("approach")

    def _plan_placement(self) -> None:
        """At grasp time: where the eef must go so that the held object lands on/in the receptacle."""
        p, scene = self.plan, self.scene
        eef = scene.eef_pos()
        obj = scene.extent(p.goal.obj)
        target = scene.extent(p.goal.target)
        offset_xy = obj.center[:2] - eef[:2]
        bottom_below_eef = eef[2] - obj.bottom
        p.lift_z = max(target.top + LIFT_CLEARANCE + bottom_below_eef, eef[2] + MIN_LIFT)
        p.place_xy = self._place_point(target) - offset_xy
        p.release_z = target.top + RELEASE_ABOVE[p.goal.relation] + bottom_below_eef

    def _place_point(self, target: Extent) -> np.ndarray:
        return target.center[:2].copy()

    # ------------------------------------------------------------------ acting
    @property
    def done(self) -> bool:
        """The motion is finished (object released, hand retreated); the goal may or may not hold."""
        return self.phase == "hold"

    def _set_phase(self, phase: str) -> None:
        self.phase, self._phase_steps, self._history = phase, 0, []

    def _stalled(self, axes: slice = slice(2, 3), tol: float = 0.001) -> bool:
        """No progress over the last 3 steps along `axes` (blocked by a contact or a reach limit)."""
        h = self._history
        return len(h) > 5 and float(np.linalg.norm(h[-1][axes] - h[-4][axes])) < tol

    def _timed_out(self) -> bool:
        return self._phase_steps > PHASE_TIMEOUT

    def act(self) -> np.ndarray:
        if self.plan is None:
            raise RuntimeError("call expert.reset() after env.reset() before act()")
        p, scene = self.plan, self.scene
        eef = scene.eef_pos()
        self._phase_steps += 1
        self._history.append(eef)
        gx, gy, gz = p.grasp.pos
        grip = GRIPPER_OPEN

        if self.phase == "approach":
            far = np.linalg.norm(eef[:2] - [gx, gy]) > 0.03
            target = np.array([gx, gy, max(p.hover_z, eef[2]) if far else p.hover_z])  # no descent while far
            xy_err = np.linalg.norm(eef[:2] - target[:2])
            near = xy_err < POS_TOL * 0.8 or (xy_err < 2 * POS_TOL and self._stalled(slice(0, 2), 0.002))
            if (near and abs(eef[2] - target[2]) < 0.02) or self._timed_out():
                self._set_phase("descend")
        if self.phase == "descend":
            target = np.array([gx, gy, gz])
            if abs(eef[2] - gz) < 0.005 or self._stalled() or self._timed_out():
                self._set_phase("close")
        if self.phase == "close":
            target, grip = np.array([gx, gy, gz]), GRIPPER_CLOSE
            if self._phase_steps >= CLOSE_STEPS:
                self._plan_placement()
                self._set_phase("lift")
        if self.phase == "lift":
            target, grip = np.array([gx, gy, p.lift_z]), GRIPPER_CLOSE
            if eef[2] > p.lift_z - 0.015 or self._timed_out():
                self._set_phase("transport")
        if self.phase == "transport":
            target, grip = np.array([*p.place_xy, p.lift_z]), GRIPPER_CLOSE
            if np.linalg.norm(eef[:2] - p.place_xy) < POS_TOL or self._timed_out():
                self._set_phase("lower")
        if self.phase == "lower":
            target, grip = np.array([*p.place_xy, p.release_z]), GRIPPER_CLOSE
            if abs(eef[2] - p.release_z) < 0.008 or self._stalled() or self._timed_out():
                self._set_phase("release")
        if self.phase == "release":
            target, grip = np.array([*p.place_xy, p.release_z]), GRIPPER_OPEN
            if self._phase_steps >= RELEASE_STEPS:
                self._set_phase("retreat")
        if self.phase == "retreat":
            target = np.array([*p.place_xy, p.lift_z])
            if eef[2] > p.lift_z - 0.02 or self._timed_out():
                self._set_phase("hold")
        if self.phase == "hold":
            target = eef
        return osc_action(eef, scene.eef_rot(), target, p.target_rot, grip)
