"""A Franka Research 3 through franky 2.0 (real arm, or franky-sim on loopback).

Each step is an asynchronous `JointVelocityMotion(v, duration=hold)`: it preempts the previous one,
and if no new command arrives the motion expires and the arm brakes to rest (the dead-man). Errors
stored by franky for an asynchronous motion surface at the next `move`; they are raised here as
`RobotFault`, and the loop stops. The control signal type must not change while moving, so every
switch between velocity and position control goes through a velocity stop first.
"""

from __future__ import annotations

import logging
import threading
import time

import numpy as np

from deploy.backends.base import RobotFault, RobotState
from deploy.gripper import Gripper

log = logging.getLogger(__name__)


def _franky():
    try:
        import franky
    except ImportError as e:  # pragma: no cover - franky-control is a dependency
        raise RuntimeError("franky is not installed: pip install franky-control==2.0.0") from e
    return franky


class FrankaHandGripper:
    """The Franka Hand through franky. Not what DROID uses (see `deploy.robotiq`).

    franky's gripper calls block, and a second command issued while one runs can block until the
    first ends, so a worker thread runs them one at a time; the control loop only posts the latest
    wanted state and never waits.
    """

    def __init__(self, host: str, speed: float = 0.1, force: float = 20.0):
        franky = _franky()
        self._g = franky.Gripper(host)
        self.speed, self.force = speed, force
        self.max_width = float(self._g.max_width) or 0.08
        self._wanted: bool | None = None
        self._applied: bool | None = None
        self._cv = threading.Condition()
        self._closing = False
        self.failures = 0
        self._worker = threading.Thread(target=self._run, name="franka-hand", daemon=True)
        self._worker.start()

    def command(self, closed: bool) -> None:
        with self._cv:
            self._wanted = bool(closed)
            self._cv.notify()

    def _run(self) -> None:
        while True:
            with self._cv:
                self._cv.wait_for(lambda: self._closing or self._wanted != self._applied)
                if self._closing:
                    return
                wanted = self._wanted
            try:
                if wanted:  # grasp whatever is there: outer tolerance as wide as the hand
                    self._g.grasp(
                        0.0, self.speed, self.force, epsilon_inner=0.005, epsilon_outer=self.max_width
                    )
                else:
                    self._g.move(self.max_width, self.speed)
            except Exception as e:  # keep the loop alive; the state read shows what happened
                self.failures += 1
                log.error("Franka Hand %s failed: %s", "grasp" if wanted else "open", e)
            self._applied = wanted

    def position(self) -> float:
        return float(np.clip(1.0 - self._g.width / self.max_width, 0.0, 1.0))

    def close(self) -> None:
        with self._cv:
            self._closing = True
            self._cv.notify()
        self._worker.join(1.0)


class FrankyBackend:
    def __init__(
        self,
        host: str,
        *,
        dynamics_factor: float = 1.0,
        realtime: bool = True,
        torque_threshold: float = 20.0,
        force_threshold: float = 30.0,
        gripper: Gripper | None = None,
    ):
        franky = _franky()
        self._f = franky
        rt = franky.RealtimeConfig.Enforce if realtime else franky.RealtimeConfig.Ignore
        try:
            self.robot = franky.Robot(host, realtime_config=rt)
        except franky.Exception as e:
            raise RobotFault(
                f"cannot connect to the arm at {host}: {e}. Check FCI is enabled in Desk, brakes are unlocked, "
                "the host is reachable, and (real arm) that the PREEMPT_RT kernel is running"
            ) from e
        self.robot.relative_dynamics_factor = franky.RelativeDynamicsFactor(
            dynamics_factor, dynamics_factor, dynamics_factor
        )
        self.robot.set_collision_behavior(torque_threshold, force_threshold)
        self.gripper = gripper
        self._velocity_mode = False

    def read_state(self) -> RobotState:
        s = self.robot.state
        grip = self.gripper.position() if self.gripper is not None else 0.0
        return RobotState(np.array(s.q), np.array(s.dq), grip, np.array(s.dq_d))

    def _check(self) -> None:
        if self.robot.has_errors:
            raise RobotFault(f"arm reports errors: {self.robot.state.current_errors}")

    def command_velocity(self, velocity: np.ndarray, hold_s: float) -> None:
        f = self._f
        v = np.asarray(velocity, dtype=np.float64)
        if v.shape != (7,) or not np.all(np.isfinite(v)):
            raise ValueError(f"refusing velocity command {v}")
        motion = f.JointVelocityMotion(v, duration=f.Duration(max(1, int(round(hold_s * 1000)))))
        try:
            self.robot.move(motion, asynchronous=True)
        except (f.Exception, RuntimeError) as e:  # franky refuses e.g. a velocity above its limits
            self._velocity_mode = False
            raise RobotFault(f"velocity command failed: {type(e).__name__}: {e}") from e
        self._velocity_mode = True
        self._check()

    def stop(self) -> None:
        f = self._f
        if not self._velocity_mode:
            return
        try:
            self.robot.move(f.JointVelocityStopMotion(), asynchronous=True)
            self.robot.join_motion(2.0)
        except f.Exception as e:
            log.error("velocity stop motion failed (%s); calling robot.stop()", e)
            try:
                self.robot.stop()
            except f.Exception as e2:
                log.error("robot.stop() failed: %s", e2)
        self._velocity_mode = False

    def move_to(self, q: np.ndarray, timeout_s: float = 10.0) -> None:
        f = self._f
        self.stop()
        try:
            self.robot.move(f.JointMotion(f.JointState(np.asarray(q, dtype=np.float64))), asynchronous=True)
            done = self.robot.join_motion(timeout_s)
        except f.Exception as e:
            raise RobotFault(f"reset motion failed: {type(e).__name__}: {e}") from e
        if not done:
            try:
                self.robot.move(f.JointStopMotion(), asynchronous=True)
                self.robot.join_motion(2.0)
            finally:
                raise RobotFault(f"reset motion did not finish within {timeout_s} s; stopped")
        self._check()

    def set_gripper(self, closed: bool) -> None:
        if self.gripper is not None:
            self.gripper.command(closed)

    def recover(self) -> None:
        try:
            self.robot.recover_from_errors()
        except self._f.Exception as e:
            raise RobotFault(f"automatic error recovery failed: {e}; use Desk / the pilot buttons") from e
        self._velocity_mode = False
        time.sleep(0.05)
        if self.robot.has_errors:
            raise RobotFault(f"arm still in error after recovery: {self.robot.state.current_errors}")

    def close(self) -> None:
        try:
            self.stop()
        finally:
            if self.gripper is not None:
                self.gripper.close()
