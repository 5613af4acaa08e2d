"""The one chunk executor: turns a policy's action chunks into one action per control step.

Shared by the simulation episode loop (`envs.rollout.run_episode`) and the real-time robot loop
(`deploy.runner.RobotRunner`); each asks `needs_query()` before a step, `push()`es the chunk it got,
and `pop()`s the action to execute.

Three modes:
  open loop      execute the first `n_action_steps` actions of each chunk, then query again (the default;
                 the simulation loop uses only this and ensembling);
  ensembling     (`temporal_ensemble=k`, ACT) query every step and execute the weighted mean of every
                 chunk's prediction for the current step, weight exp(-k * i), i = 0 for the oldest;
  overlapping    (`chunk_threshold=f`, lerobot's async inference) the caller requests the next chunk in the
                 background as soon as `wants_query()`: the queue has fallen to f * chunk_len actions. The
                 queue holds a chunk up to its end, so it keeps supplying actions while the request is in flight.
                 The reply is `push(chunk, age=k)`ed, k = actions popped since its observation: its first k
                 actions are stale, the rest is merged with what is still queued (`aggregate`, `merge_chunks`).
"""

from __future__ import annotations

from collections import deque

import numpy as np

# weight of the NEW chunk on the steps both chunks cover (lerobot's aggregate functions)
AGGREGATES = {"replace": 1.0, "weighted_average": 0.7, "average": 0.5, "conservative": 0.3}


def merge_chunks(queued: np.ndarray, fresh: np.ndarray, aggregate: str = "replace") -> np.ndarray:
    """The new plan from the actions still `queued` (Q, A) and a `fresh` chunk (F, A) aligned on the same step.

    Steps both cover: w * fresh + (1 - w) * queued, w = AGGREGATES[aggregate] ("replace": the fresh chunk only);
    steps only the fresh chunk covers: fresh. The queued tail past the fresh chunk's end is dropped.
    """
    if aggregate not in AGGREGATES:
        raise ValueError(f"aggregate must be one of {sorted(AGGREGATES)}, got {aggregate!r}")
    fresh = np.asarray(fresh, np.float32)
    queued = np.asarray(queued, np.float32).reshape(-1, fresh.shape[-1])
    w = AGGREGATES[aggregate]
    n = min(len(queued), len(fresh))
    out = fresh.copy()
    out[:n] = w * fresh[:n] + (1.0 - w) * queued[:n]
    return out


class TemporalEnsembler:
    """ACT-style temporal ensembling of the chunks predicted for the current step."""

    def __init__(self, k: float) -> None:
        self.k = float(k)
        self.chunks: list[np.ndarray] = []  # chunk predicted i steps ago is chunks[-1 - i]

    def reset(self) -> None:
        self.chunks = []

    def __call__(self, chunk: np.ndarray) -> np.ndarray:
        self.chunks.append(np.asarray(chunk))
        self.chunks = self.chunks[-len(chunk) :]  # older chunks no longer cover the current step
        preds = [c[len(self.chunks) - 1 - j] for j, c in enumerate(self.chunks)]  # oldest first
        w = np.exp(-self.k * np.arange(len(preds)))
        return np.tensordot(w / w.sum(), np.stack(preds), axes=1).astype(np.float32)


class ChunkExecutor:
    """Open-loop execution of `n_action_steps` actions per chunk, temporal ensembling (one per query), or
    overlapping chunks (`chunk_threshold`: the next request starts before the queue runs out)."""

    def __init__(
        self,
        n_action_steps: int,
        temporal_ensemble: float | None = None,
        chunk_threshold: float | None = None,
        aggregate: str = "replace",
    ) -> None:
        if n_action_steps < 1:
            raise ValueError(f"n_action_steps must be >= 1, got {n_action_steps}")
        if temporal_ensemble is not None and temporal_ensemble < 0:
            raise ValueError(f"temporal_ensemble (k) must be >= 0, got {temporal_ensemble}")
        if chunk_threshold is not None:
            if not 0 < chunk_threshold <= 1:
                raise ValueError(f"chunk_threshold must be in (0, 1] (null = off), got {chunk_threshold}")
            if temporal_ensemble is not None:
                raise ValueError("chunk_threshold (overlapping chunks) and temporal_ensemble are exclusive")
        if aggregate not in AGGREGATES:
            raise ValueError(f"aggregate must be one of {sorted(AGGREGATES)}, got {aggregate!r}")
        self.n_action_steps = int(n_action_steps)
        self.ensembler = TemporalEnsembler(temporal_ensemble) if temporal_ensemble is not None else None
        self.chunk_threshold = chunk_threshold
        self.aggregate = aggregate
        self.steps = 0  # actions popped since reset(): the clock that `push(age=)` is measured on
        self._chunk_len = 0
        self._queue: deque[np.ndarray] = deque()

    @property
    def overlapping(self) -> bool:
        return self.chunk_threshold is not None

    @property
    def steps_per_query(self) -> int:
        return 1 if self.ensembler is not None else self.n_action_steps

    def reset(self) -> None:
        """Start an episode: no queued actions, no ensembling history."""
        self._queue.clear()
        self.steps = 0
        if self.ensembler is not None:
            self.ensembler.reset()

    def drop(self) -> None:
        """Discard the queued actions (after an error) so the next step queries again."""
        self._queue.clear()

    def needs_query(self) -> bool:
        """No action left: the caller must get a chunk before it can step."""
        return not self._queue

    def wants_query(self) -> bool:
        """Time to request the next chunk: the queue is empty, or (overlapping) down to the threshold."""
        if not self.overlapping or not self._queue:
            return not self._queue
        return len(self._queue) <= self.chunk_threshold * self._chunk_len

    @property
    def remaining(self) -> int:
        return len(self._queue)

    def pending(self) -> np.ndarray:
        """The queued actions, oldest first (P, A); what real-time chunking guides the next chunk toward."""
        return np.stack(self._queue) if self._queue else np.zeros((0, 0), np.float32)

    def push(self, chunk: np.ndarray, age: int = 0) -> None:
        """Queue the actions of one (T, A) chunk that this executor will run. `age`: actions popped since the
        observation the chunk was computed from (overlapping mode; stale, skipped)."""
        chunk = np.asarray(chunk)
        if chunk.ndim != 2:
            raise ValueError(f"push one (T, A) chunk, got shape {chunk.shape}")
        if age and not self.overlapping:
            raise ValueError("push(age=) needs overlapping chunks (chunk_threshold)")
        if self.ensembler is not None:
            self._queue = deque([self.ensembler(chunk)])
        elif self.overlapping:
            self._chunk_len = len(chunk)
            fresh = chunk[age:]
            if not len(fresh):
                return  # every action is stale: keep the current plan
            merged = merge_chunks(self.pending(), fresh, self.aggregate) if self._queue else fresh
            self._queue = deque(np.asarray(merged, np.float32))
        else:
            self._queue = deque(chunk[: self.n_action_steps])

    def pop(self) -> np.ndarray:
        if not self._queue:
            raise RuntimeError("no queued action: query the policy and push its chunk first")
        self.steps += 1
        return self._queue.popleft()
