"""A resident-memory budget for the policy server.

libzmq keeps every frame of a multipart message until its last frame arrives, and no socket option
bounds the number of frames, so a peer that never finishes a message can make the server hold any
amount of memory (`MAXMSGSIZE` caps one frame only). The server therefore checks its own RSS between
requests; over budget, it drops every connection (unbind + bind: libzmq frees their buffers; clients
reconnect by themselves and resend after their timeout) and hands the freed heap back to the OS.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import time
from dataclasses import dataclass

import zmq

log = logging.getLogger(__name__)

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_bytes() -> int:
    """Resident set size of this process (Linux /proc; 0 where unavailable)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return 0


def release_free_heap() -> None:
    """Return free heap pages to the OS (glibc `malloc_trim`); a no-op elsewhere."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


@dataclass(frozen=True)
class MemoryBudget:
    growth_bytes: int | None = 1 << 30  # RSS allowed above the RSS at server start; None = unchecked
    check_interval_s: float = 0.005  # how often the serving loop looks (also its idle poll period)

    def __post_init__(self) -> None:
        if self.growth_bytes is not None and self.growth_bytes < 16 << 20:
            raise ValueError(f"growth_bytes={self.growth_bytes} is below 16 MiB; the server could not work")
        if not 0 < self.check_interval_s <= 1:
            raise ValueError("check_interval_s must be in (0, 1] s")


class MemoryGuard:
    def __init__(self, budget: MemoryBudget):
        self.budget = budget
        self.baseline = rss_bytes()
        self.purges = 0
        self.peak = self.baseline

    @property
    def limit(self) -> int | None:
        g = self.budget.growth_bytes
        return None if g is None or not self.baseline else self.baseline + g

    def over(self) -> bool:
        limit = self.limit
        if limit is None:
            return False
        rss = rss_bytes()
        self.peak = max(self.peak, rss)
        return rss > limit

    def purge(self, sock: zmq.Socket, endpoint: str) -> None:
        """Drop every connection of `sock` (unbind frees what libzmq buffered for them), give the freed
        heap back to the OS, bind `endpoint` again. If RSS is still over, the growth is the server's own
        (the policy), so the limit moves up to it instead of purging forever."""
        rss = rss_bytes()
        sock.unbind(endpoint)
        release_free_heap()
        for attempt in range(100):
            try:
                sock.bind(endpoint)
                break
            except zmq.ZMQError:
                if attempt == 99:
                    raise
                time.sleep(0.01)
        self.purges += 1
        after = rss_bytes()
        log.error(
            "memory budget exceeded (RSS %.0f MiB > %.0f MiB): dropped all connections; RSS now %.0f MiB",
            rss / 2**20,
            (self.limit or 0) / 2**20,
            after / 2**20,
        )
        if self.limit is not None and after > self.limit:
            self.baseline = after
            log.error("server RSS itself is above the budget; the limit is now %.0f MiB", self.limit / 2**20)
