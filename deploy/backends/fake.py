"""A pure-Python arm for tests and `--dry-run` without hardware: deterministic kinematics in real time.

Each joint's velocity tracks the commanded one with a bounded acceleration; a command expires after
its hold time and the joint brakes to rest, like franky's `JointVelocityMotion`. Faults can be injected.
"""

from __future__ import annotations

import threading
import time

import numpy as np

from deploy.backends.base import RobotFault, RobotState
from deploy.droid import RESET_JOINTS


class FakeBackend:
    def __init__(self, q0: np.ndarray | None = None, accel: float = 5.0, clock=time.monotonic):
        self.q = (RESET_JOINTS if q0 is None else np.asarray(q0, float)).copy()
        self.dq = np.zeros(7)
        self.accel = np.full(7, accel) if np.isscalar(accel) else np.asarray(accel)
        self.gripper_closed = False
        self.clock = clock
        self._cmd = np.zeros(7)
        self._cmd_until = -np.inf
        self._t = clock()
        self._lock = threading.Lock()
        self.commands: list[tuple[float, np.ndarray, float]] = []  # (time, velocity, hold_s)
        self.gripper_commands: list[bool] = []
        self.stops = 0
        self.recoveries = 0
        self.fault_on_command: int | None = None  # raise RobotFault on this command index
        self.in_error = False

    def _advance(self) -> None:
        now = self.clock()
        dt_total, t = now - self._t, self._t
        step = 0.001
        while dt_total > 1e-12:
            h = min(step, dt_total)
            want = self._cmd if t < self._cmd_until else np.zeros(7)
            self.dq += np.clip(want - self.dq, -self.accel * h, self.accel * h)
            self.q += self.dq * h
            t += h
            dt_total -= h
        self._t = now

    def read_state(self) -> RobotState:
        with self._lock:
            self._advance()
            want = self._cmd if self._t < self._cmd_until else np.zeros(7)
            return RobotState(self.q.copy(), self.dq.copy(), float(self.gripper_closed), want.copy())

    def command_velocity(self, velocity: np.ndarray, hold_s: float) -> None:
        with self._lock:
            self._advance()
            if self.in_error:
                raise RobotFault("fake arm is in error state (call recover)")
            if self.fault_on_command is not None and len(self.commands) == self.fault_on_command:
                self.in_error = True
                self._cmd_until = -np.inf
                raise RobotFault("injected fault: cartesian_reflex")
            v = np.asarray(velocity, float)
            self.commands.append((self._t, v.copy(), hold_s))
            # hold starts once the target velocity is reached (as in franky)
            ramp = float(np.max(np.abs(v - self.dq) / self.accel))
            self._cmd, self._cmd_until = v, self._t + ramp + hold_s

    def stop(self) -> None:
        with self._lock:
            self._advance()
            self.stops += 1
            self._cmd_until = -np.inf

    def move_to(self, q: np.ndarray, timeout_s: float = 5.0) -> None:
        with self._lock:
            if self.in_error:
                raise RobotFault("fake arm is in error state (call recover)")
            self.q = np.asarray(q, float).copy()
            self.dq = np.zeros(7)
            self._cmd_until = -np.inf
            self._t = self.clock()

    def set_gripper(self, closed: bool) -> None:
        self.gripper_closed = bool(closed)
        self.gripper_commands.append(bool(closed))

    def recover(self) -> None:
        self.recoveries += 1
        self.in_error = False
        self.fault_on_command = None

    def close(self) -> None:
        pass
