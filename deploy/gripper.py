"""Gripper interface and the binarisation of the policy's continuous gripper action.

DROID convention: gripper position 0 = open, 1 = closed. A policy emits a continuous value; the
arm's gripper is driven open/closed, with hysteresis (close above `close_above`, open below
`open_below`) and a minimum dwell between switches so a value hovering near 0.5 does not chatter.
"""

from __future__ import annotations

from typing import Protocol


class Gripper(Protocol):
    def command(self, closed: bool) -> None:
        """Start opening or closing; must not block the control loop."""

    def position(self) -> float:
        """Measured opening as a DROID gripper position: 0 open .. 1 closed."""

    def close(self) -> None:
        """Release the device."""


class GripperHysteresis:
    def __init__(
        self,
        close_above: float = 0.6,
        open_below: float = 0.4,
        min_dwell_s: float = 0.3,
        closed: bool = False,
    ):
        if not 0.0 <= open_below < close_above <= 1.0:
            raise ValueError("need 0 <= open_below < close_above <= 1")
        self.close_above = close_above
        self.open_below = open_below
        self.min_dwell_s = min_dwell_s
        self.closed = closed
        self._last_switch = -float("inf")

    def reset(self, closed: bool = False) -> None:
        self.closed = closed
        self._last_switch = -float("inf")

    def update(self, value: float, now: float) -> bool | None:
        """Feed one action value at time `now` (s); return the new state on a switch, else None."""
        if now - self._last_switch < self.min_dwell_s:
            return None
        want = self.closed
        if value > self.close_above:
            want = True
        elif value < self.open_below:
            want = False
        if want == self.closed:
            return None
        self.closed = want
        self._last_switch = now
        return want
