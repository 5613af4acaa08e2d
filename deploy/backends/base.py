"""What the robot loop needs from an arm: read state, stream short velocity commands, stop, reset."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


class RobotFault(RuntimeError):
    """The arm reported an error (reflex, communication, limit). The loop must stop, never continue blindly."""


@dataclass
class RobotState:
    q: np.ndarray  # joint positions (7,) rad
    dq: np.ndarray  # joint velocities (7,) rad/s
    gripper: float  # DROID gripper position: 0 open .. 1 closed
    dq_commanded: np.ndarray | None = None  # controller's desired velocity, when the backend knows it


class RobotBackend(Protocol):
    def read_state(self) -> RobotState: ...

    def command_velocity(self, velocity: np.ndarray, hold_s: float) -> None:
        """Non-blocking: move at `velocity` (rad/s) for `hold_s` unless replaced, then brake to rest.
        Raises RobotFault if the arm is in error (including errors of the previous command)."""

    def stop(self) -> None:
        """Brake to rest now. Must not raise for an arm that is already stopped."""

    def move_to(self, q: np.ndarray, timeout_s: float) -> None:
        """Blocking joint move (reset pose). Raises RobotFault on error or timeout."""

    def set_gripper(self, closed: bool) -> None:
        """Non-blocking open/close."""

    def recover(self) -> None:
        """Clear recoverable errors (automatic error recovery). Raises RobotFault if it cannot."""

    def close(self) -> None: ...
