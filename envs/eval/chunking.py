"""Override how many actions of each chunk run open-loop, without touching the policy."""

from __future__ import annotations

from dataclasses import replace


class _ActionSteps:
    def __init__(self, policy, n: int) -> None:
        self.inner = policy
        self.spec = replace(policy.spec, n_action_steps=min(int(n), policy.spec.chunk_len))

    def reset(self) -> None:
        self.inner.reset()

    def predict_chunk(self, batch):
        return self.inner.predict_chunk(batch)


def with_action_steps(policy, n: int | None):
    """`policy` executing `n` actions per query (clamped to its chunk length); None keeps its own setting."""
    if n is None:
        return policy
    if n < 1:
        raise ValueError(f"n_action_steps must be >= 1, got {n}")
    return _ActionSteps(policy, n)
