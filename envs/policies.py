"""Policies for LIBERO that need no training, resolved by name: used by the rollout CLI and tests.

  hold    - keeps the arm still with the gripper open (a baseline that should never succeed)
  expert  - the privileged-state scripted expert (envs.experts), bound to one env
"""

from __future__ import annotations

import numpy as np

from envs.libero.constants import ACTION_DIM, STATE_DIM, WAIT_ACTION
from vla.protocol import PolicySpec, batch_size

POLICY_NAMES = ("hold", "expert")


class HoldStillPolicy:
    """Emits LIBERO's no-op action; the task is never solved. Useful as a sanity baseline."""

    def __init__(self, chunk_len: int = 8) -> None:
        self.spec = PolicySpec(
            policy_id="hold", action_space="libero_osc_delta", action_dim=ACTION_DIM, chunk_len=chunk_len, state_dim=STATE_DIM
        )

    def reset(self) -> None:
        pass

    def predict_chunk(self, batch) -> np.ndarray:
        return np.broadcast_to(WAIT_ACTION, (batch_size(batch), self.spec.chunk_len, ACTION_DIM)).copy()


def make_policy(name: str, env=None):
    """Build a named policy; `env` is needed by policies that read privileged simulator state."""
    if name == "hold":
        return HoldStillPolicy()
    if name == "expert":
        from envs.experts.policy import ScriptedExpertPolicy

        if env is None:
            raise ValueError("the scripted expert needs the env it acts in")
        return ScriptedExpertPolicy([env])
    raise ValueError(f"unknown policy {name!r}; valid: {', '.join(POLICY_NAMES)}")
