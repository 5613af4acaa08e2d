"""Small real policies that follow `vla.protocol` and DROID semantics, for serving before trained
checkpoints exist and for tests. None of them has learned anything. They are resolved by name through
`vla.policies.load_policy` ("hold", "scripted_wave", "random_mlp"; see `vla.policies.POLICIES`).

- `DroidHoldStillPolicy`: the one hold-still policy (`vla.policies`) with DROID defaults. Safe smoke test.
- `ScriptedWavePolicy`: deterministic sinusoidal joint-velocity pattern (time = query count), gripper
  toggling every `gripper_period` queries. Exercises motion and the gripper.
- `RandomMLPPolicy`: a tiny torch MLP with seeded random weights on (state, image means) -> tanh
  velocities. Exercises a real forward pass; outputs are meaningless.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from deploy.droid import ACTION_DIM, droid_spec
from vla.conventions import DROID_JOINT_VELOCITY
from vla.policies import HoldStillPolicy
from vla.protocol import STATE_KEY, PolicySpec, validate_batch


class DroidHoldStillPolicy(HoldStillPolicy):
    """`vla.policies.HoldStillPolicy` in the DROID action space: 16-step chunks, 8 executed, gripper open."""

    def __init__(
        self,
        chunk_len: int = 16,
        n_action_steps: int = 8,
        gripper: float = 0.0,
        image_size: int | None = None,
    ):
        super().__init__(DROID_JOINT_VELOCITY, chunk_len, n_action_steps, gripper, image_size)


class ScriptedWavePolicy:
    def __init__(
        self,
        chunk_len: int = 16,
        n_action_steps: int = 8,
        amplitude: float = 0.3,
        period_steps: int = 32,
        gripper_period: int = 4,
    ):
        self.spec: PolicySpec = droid_spec("scripted-wave", chunk_len, n_action_steps)
        self.amplitude = float(amplitude)
        self.period_steps = int(period_steps)
        self.gripper_period = int(gripper_period)
        self.queries = 0

    def reset(self) -> None:
        self.queries = 0

    def predict_chunk(self, batch: Mapping[str, Any]) -> np.ndarray:
        b = validate_batch(self.spec, batch)
        t0 = self.queries * self.spec.steps_per_query
        t = t0 + np.arange(self.spec.chunk_len)
        phase = 2 * np.pi * t[:, None] / self.period_steps + np.arange(7)[None, :] * 0.7
        vel = self.amplitude * np.sin(phase)
        grip = np.full((self.spec.chunk_len, 1), float((self.queries // self.gripper_period) % 2))
        self.queries += 1
        return np.broadcast_to(np.concatenate([vel, grip], 1), (b, self.spec.chunk_len, ACTION_DIM)).astype(
            np.float32
        )


class RandomMLPPolicy:
    def __init__(self, chunk_len: int = 16, n_action_steps: int = 8, hidden: int = 64, seed: int = 0):
        import torch

        self.spec: PolicySpec = droid_spec(f"random-mlp-seed{seed}", chunk_len, n_action_steps)
        g = torch.Generator().manual_seed(seed)
        n_in = self.spec.state_dim + 3 * len(self.spec.image_shapes)
        self._torch = torch
        self.net = torch.nn.Sequential(
            torch.nn.Linear(n_in, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, chunk_len * ACTION_DIM)
        )
        with torch.no_grad():
            for p in self.net.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.3)
        self.net.eval()

    def reset(self) -> None:
        pass

    def predict_chunk(self, batch: Mapping[str, Any]) -> np.ndarray:
        b = validate_batch(self.spec, batch)
        feats = [np.asarray(batch[STATE_KEY], np.float32)]
        for key in sorted(self.spec.image_shapes):
            feats.append(batch[key].reshape(b, -1, 3).mean(1).astype(np.float32) / 255.0)
        with self._torch.no_grad():
            out = self.net(self._torch.from_numpy(np.concatenate(feats, 1)))
        chunk = out.numpy().reshape(b, self.spec.chunk_len, ACTION_DIM)
        vel = np.tanh(chunk[..., :7])
        grip = 1.0 / (1.0 + np.exp(-chunk[..., 7:]))
        return np.concatenate([vel, grip], -1).astype(np.float32)
