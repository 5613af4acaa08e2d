"""Deadline-based loop pacing: tick k is due at start + k * period, so timing errors never accumulate."""

from __future__ import annotations

import time


class RateClock:
    """`wait()` sleeps until the next deadline on a fixed grid. An overrun skips the missed ticks
    (counted in `missed`) instead of bursting to catch up; `restart()` re-anchors the grid."""

    def __init__(self, hz: float, spin_s: float = 0.0005):
        if hz <= 0:
            raise ValueError("hz must be > 0")
        self.period = 1.0 / hz
        self.spin_s = spin_s
        self.missed = 0
        self.restart()

    def restart(self) -> None:
        self._start = time.perf_counter()
        self._tick = 0

    @property
    def next_deadline(self) -> float:
        return self._start + (self._tick + 1) * self.period

    def wait(self) -> float:
        """Sleep to the next deadline; return the lateness (s) of the wake-up against it."""
        self._tick += 1
        deadline = self._start + self._tick * self.period
        now = time.perf_counter()
        if now > deadline + self.period:  # overran by more than a period: skip ahead on the grid
            skipped = int((now - deadline) / self.period)
            self.missed += skipped
            self._tick += skipped
            deadline = self._start + self._tick * self.period
        remaining = deadline - now
        if remaining > self.spin_s:
            time.sleep(remaining - self.spin_s)
        while time.perf_counter() < deadline:  # short spin for sub-ms accuracy
            pass
        return time.perf_counter() - deadline
