"""Where the policy lives during an evaluation.

Policies are named and built by `vla.policies.load_policy` (a registered name, "module:factory", a
checkpoint directory or a tcp:// address); this module only decides where the policy runs:

  worker  - each worker process builds its own policy for the env it owns. Needed for policies bound to
            one simulator (the scripted expert reads privileged state); fine for cheap CPU policies.
  parent  - one policy object in the parent process answers every worker: observations of all waiting
            workers are stacked into one batch (GPU-friendly), the chunk is split back. Workers talk to
            it through `ProxyPolicy`. Used for checkpoints, served policies and policy objects (trainer).
"""

from __future__ import annotations

import numpy as np

from vla.policies import is_env_bound, spec_kind, stack_batches
from vla.protocol import PolicySpec

__all__ = ["ProxyPolicy", "placement", "stack_batches"]

CHEAP = ("hold",)  # built-in policies cheaper to build per worker than to share


def placement(policy, requested: str = "auto") -> str:
    """'worker' or 'parent' for a policy spec (or object); 'auto' keeps env-bound and cheap ones in the worker."""
    if requested not in ("auto", "worker", "parent"):
        raise ValueError(f"policy_placement must be auto, worker or parent, got {requested!r}")
    if not isinstance(policy, str):
        if requested == "worker":
            raise ValueError("a policy object lives in this process: policy_placement must be parent or auto")
        return "parent"
    kind = spec_kind(policy)
    if is_env_bound(policy):
        if requested == "parent":
            raise ValueError(
                f"policy {policy!r} reads the simulator of one env and can only run in the worker"
            )
        return "worker"
    if requested == "auto":
        return "worker" if kind == "name" and policy in CHEAP else "parent"
    return requested


class ProxyPolicy:
    """In a worker: forwards each observation batch to the parent's policy and waits for the chunk."""

    def __init__(self, conn, spec: PolicySpec) -> None:
        self.conn = conn
        self.spec = spec

    def reset(self) -> None:
        pass  # the parent's policy is shared; chunking state lives in the episode loop

    def predict_chunk(self, batch) -> np.ndarray:
        self.conn.send(("obs", dict(batch)))
        kind, payload = self.conn.recv()
        if kind == "error":
            raise RuntimeError(f"parent policy failed: {payload}")
        return payload
