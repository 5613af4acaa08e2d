"""The one chunk executor: turns a policy's action chunks into one action per control step.

Shared by the simulation episode loop (`envs.rollout.run_episode`) and the real-time robot loop
(`deploy.runner.RobotRunner`); each asks `needs_query()` before a step, `push()`es the chunk it got,
and `pop()`s the action to execute.

Two modes:
  open loop      execute the first `n_action_steps` actions of each chunk, then query again;
  ensembling     (`temporal_ensemble=k`, ACT) query every step and execute the weighted mean of every
                 chunk's prediction for the current step, weight exp(-k * i), i = 0 for the oldest.
"""

from __future__ import annotations

from collections import deque

import numpy as np


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
    """Open-loop execution of `n_action_steps` actions per chunk, or temporal ensembling (one per query)."""

    def __init__(self, n_action_steps: int, temporal_ensemble: float | None = None) -> None:
        if n_action_steps < 1:
            raise ValueError(f"n_action_steps must be >= 1, got {n_action_steps}")
        if temporal_ensemble is not None and temporal_ensemble < 0:
            raise ValueError(f"temporal_ensemble (k) must be >= 0, got {temporal_ensemble}")
        self.n_action_steps = int(n_action_steps)
        self.ensembler = TemporalEnsembler(temporal_ensemble) if temporal_ensemble is not None else None
        self._queue: deque[np.ndarray] = deque()

    @property
    def steps_per_query(self) -> int:
        return 1 if self.ensembler is not None else self.n_action_steps

    def reset(self) -> None:
        """Start an episode: no queued actions, no ensembling history."""
        self._queue.clear()
        if self.ensembler is not None:
            self.ensembler.reset()

    def drop(self) -> None:
        """Discard the queued actions (after an error) so the next step queries again."""
        self._queue.clear()

    def needs_query(self) -> bool:
        return not self._queue

    @property
    def remaining(self) -> int:
        return len(self._queue)

    def push(self, chunk: np.ndarray) -> None:
        """Queue the actions of one (T, A) chunk that this executor will run."""
        chunk = np.asarray(chunk)
        if chunk.ndim != 2:
            raise ValueError(f"push one (T, A) chunk, got shape {chunk.shape}")
        if self.ensembler is not None:
            self._queue = deque([self.ensembler(chunk)])
        else:
            self._queue = deque(chunk[: self.n_action_steps])

    def pop(self) -> np.ndarray:
        if not self._queue:
            raise RuntimeError("no queued action: query the policy and push its chunk first")
        return self._queue.popleft()
