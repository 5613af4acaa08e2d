"""The episode list of an evaluation: suite x task x init state x seed (x perturbation), deterministic.

Every episode has a stable string key; results, resume, shards and merges all speak in keys, so the
same command always means the same episodes, in the same order, on any machine.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Episode:
    suite: str
    task_id: int
    init_state: int
    seed: int
    perturbation: str = "none"  # category name (envs.eval.perturb.CATEGORIES) or "none"
    severity: int = 0

    @property
    def key(self) -> str:
        base = f"{self.suite}/{self.task_id}/{self.init_state}/s{self.seed}"
        return base if self.perturbation == "none" else f"{base}/{self.perturbation}{self.severity}"

    @property
    def task_key(self) -> tuple[str, int]:
        return (self.suite, self.task_id)

    def stable_hash(self) -> int:
        """A process-independent hash of the key (Python's hash() is salted per process)."""
        return int.from_bytes(hashlib.sha256(self.key.encode()).digest()[:8], "big")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Episode:
        return cls(
            **{
                k: d[k]
                for k in ("suite", "task_id", "init_state", "seed", "perturbation", "severity")
                if k in d
            }
        )


def build_episodes(
    suites: Sequence[str],
    task_ids: Sequence[int] | None,
    trials_per_task: int,
    seeds: Sequence[int],
    *,
    init_states: Sequence[int] | None = None,
    perturbations: Sequence[tuple[str, int]] = (("none", 0),),
    num_tasks=None,
) -> list[Episode]:
    """Enumerate episodes in a fixed order: suite, task, perturbation, seed, init state.

    `task_ids=None` means every task of each suite; `init_states` (explicit indices) overrides
    `trials_per_task` (indices 0..trials-1, the standard protocol's fixed init states).
    """
    from envs.libero.constants import NUM_INIT_STATES
    from envs.libero.tasks import UnknownTaskError, check_suite

    if num_tasks is None:
        from envs.libero.tasks import num_tasks
    if not suites:
        raise ValueError("no suites given")
    if not seeds:
        raise ValueError("no seeds given")
    states = list(init_states) if init_states is not None else list(range(trials_per_task))
    if not states:
        raise ValueError("no init states: trials_per_task must be >= 1 (or give init_states)")
    bad = [s for s in states if not 0 <= int(s) < NUM_INIT_STATES]
    if bad:
        raise UnknownTaskError(f"init states {bad} out of range; valid 0..{NUM_INIT_STATES - 1}")
    episodes = []
    for suite in suites:
        check_suite(suite)
        n = num_tasks(suite)
        tasks = list(range(n)) if task_ids is None else [int(t) for t in task_ids]
        bad = [t for t in tasks if not 0 <= t < n]
        if bad:
            from envs.libero.tasks import get_task

            get_task(suite, bad[0])  # raises with the list of valid task ids
        for task in tasks:
            for pert, sev in perturbations:
                for seed in seeds:
                    for s in states:
                        episodes.append(Episode(suite, task, int(s), int(seed), pert, int(sev)))
    keys = [e.key for e in episodes]
    if len(set(keys)) != len(keys):
        raise ValueError("duplicate episodes (repeated suite, task, init state, seed or perturbation)")
    return episodes


def parse_shard(shard: str | None) -> tuple[int, int]:
    """'k/N' (1-based k) -> (k, N); None -> (1, 1)."""
    if shard in (None, "", "1/1"):
        return 1, 1
    try:
        k, n = (int(x) for x in str(shard).split("/"))
    except ValueError:
        raise ValueError(f"shard must look like 'k/N' (e.g. 2/8), got {shard!r}") from None
    if not (n >= 1 and 1 <= k <= n):
        raise ValueError(f"shard {shard!r}: need 1 <= k <= N")
    return k, n


def select_shard(episodes: Iterable[Episode], k: int, n: int) -> list[Episode]:
    """Shard k of N: episode i of the full list goes to shard (i mod N) + 1 (balanced, disjoint, complete)."""
    return [e for i, e in enumerate(episodes) if i % n == k - 1]
