"""Where the policy lives during an evaluation, and how it is built.

Two placements, one protocol (`vla.protocol.Policy`):

  worker  - each worker process builds its own policy for the env it owns. Needed for policies bound to
            one simulator (the scripted expert reads privileged state); fine for cheap CPU policies.
  parent  - one policy object in the parent process answers every worker: observations of all waiting
            workers are stacked into one batch (GPU-friendly), the chunk is split back. Workers talk to
            it through `ProxyPolicy`. Used for checkpoints and for a served policy (`RemotePolicy`).

A policy is named by a string: "hold", "expert", or "package.module:factory" (called with
`env=` when it runs in a worker, plus `policy_kwargs`).
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

import numpy as np

from envs.libero.constants import ACTION_DIM, STATE_DIM
from vla.protocol import PolicySpec

ENV_BOUND = ("expert",)  # policies that need the env they act in: always in the worker


class ExpertChunkPolicy:
    """The scripted expert (`envs.experts`) as a protocol policy: one action per query, no images.

    The expert plans from poses read after the env's wait steps, so its own reset is deferred to the
    first query of an episode (the harness calls `policy.reset()` before `env.reset()`).
    """

    def __init__(self, env) -> None:
        from envs.experts import make_expert

        self.expert = make_expert(env)
        self.spec = PolicySpec(policy_id="expert", action_space="libero_osc_delta", action_dim=ACTION_DIM,
                               chunk_len=1, state_dim=STATE_DIM)
        self._fresh = True

    def reset(self) -> None:
        self._fresh = True

    def predict_chunk(self, batch) -> np.ndarray:
        if self._fresh:
            self.expert.reset()
            self._fresh = False
        return np.asarray(self.expert.act(), dtype=np.float32)[None, None]


def placement(name: str, requested: str = "auto") -> str:
    """'worker' or 'parent' for a policy name; 'auto' keeps env-bound and built-in policies in the worker."""
    if requested not in ("auto", "worker", "parent"):
        raise ValueError(f"policy_placement must be auto, worker or parent, got {requested!r}")
    if name in ENV_BOUND:
        if requested == "parent":
            raise ValueError(f"policy {name!r} reads the simulator of one env and can only run in the worker")
        return "worker"
    if requested == "auto":
        return "worker" if name == "hold" else "parent"
    return requested


def build_policy(name: str, env=None, **kwargs: Any):
    """Build a policy by name; `env` is given in workers (required by env-bound policies)."""
    if name == "expert":
        if env is None:
            raise ValueError("the scripted expert needs the env it acts in")
        return ExpertChunkPolicy(env)
    if name == "hold":
        from envs.policies import HoldStillPolicy

        return HoldStillPolicy(**kwargs)
    if name == "remote":
        from envs.eval.remote import RemotePolicy

        return RemotePolicy(**kwargs)
    if ":" not in name:
        raise ValueError(f"unknown policy {name!r}; valid: hold, expert, remote, or 'package.module:factory'")
    mod_name, _, attr = name.partition(":")
    try:
        factory = getattr(importlib.import_module(mod_name), attr)
    except (ImportError, AttributeError) as e:
        raise ValueError(f"cannot load policy factory {name!r}: {e}") from e
    if env is not None and "env" in inspect.signature(factory).parameters:
        kwargs = {"env": env, **kwargs}
    return factory(**kwargs)


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


def stack_batches(batches: list[dict]) -> dict:
    """Concatenate protocol batches along B (images, state) and join the task lists."""
    out: dict[str, Any] = {}
    for key in batches[0]:
        if key == "task":
            out[key] = [t for b in batches for t in b[key]]
        else:
            out[key] = np.concatenate([b[key] for b in batches], axis=0)
    return out
