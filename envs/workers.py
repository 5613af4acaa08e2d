"""How many simulator processes to run: one meaning of "auto" for demo generation, expert checks and evaluation.

Each worker owns one rendered LIBERO env, so "auto" is bounded by the cores this process may use (its CPU affinity,
which container limits and `taskset` shrink below `os.cpu_count()`) and by free memory (~1.2 GB per env).
"""

from __future__ import annotations

import os

GB = 1 << 30
ENV_MEMORY_GB = 1.2  # ~0.8-1.45 GB RSS per rendered LIBERO env (reference §6)
RESERVED_GB = 2.0  # left to the parent process, the trainer and the OS


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask where the OS exposes one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def workers_by_memory() -> int:
    """Envs that fit in the memory available now, after a reserve; the core count where it cannot be read."""
    try:
        avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return usable_cores()
    return max(1, int((avail - RESERVED_GB * GB) / (ENV_MEMORY_GB * GB)))


def auto_workers(requested: int | str | None, n_jobs: int | None = None) -> int:
    """Workers for `n_jobs` episodes (None: no cap): an explicit number wins, else cores and memory decide."""
    cap = max(1, n_jobs) if n_jobs is not None else None
    if requested not in (None, "auto", 0):
        return max(1, min(int(requested), cap or int(requested)))
    return max(1, min(usable_cores(), workers_by_memory(), cap or usable_cores()))
