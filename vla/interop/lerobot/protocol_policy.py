"""A lerobot policy checkpoint written by `pion-train model=lerobot` behind `vla.protocol` (obs batch -> chunk).

    policy = load_lerobot_policy("outputs/train/<run>/checkpoints/step_N/pretrained", device="cpu")
    pion-eval policy=vla.interop.lerobot.protocol_policy:load_lerobot_policy +policy_kwargs.path=<dir>

The spec (action space, cameras and their sizes, dims, chunk) comes from the checkpoint's `pion_lerobot.json`; the
batch is validated against it, converted like the training batches (`to_lerobot_batch`), run through the
checkpoint's own lerobot pre-processor, `predict_action_chunk` and post-processor (unnormalisation). Stateless:
the caller executes `n_action_steps` actions of every chunk (ACT's temporal ensembling is not used).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vla.conventions import action_space
from vla.interop.lerobot.policy_adapter import load_checkpoint, to_lerobot_batch
from vla.protocol import PolicySpec, validate_batch, validate_chunk


class LerobotProtocolPolicy:
    """`vla.protocol.Policy` over a lerobot policy and its processors (see the module docstring)."""

    def __init__(self, policy: torch.nn.Module, processor, device: str = "cpu", policy_id: str | None = None,
                 n_action_steps: int | None = None) -> None:  # fmt: skip
        self.policy, self.processor, self.device = policy.eval(), processor, device
        meta = processor.meta
        space = action_space(meta["action_space"])
        self.spec = PolicySpec(
            policy_id=policy_id or f"lerobot:{meta['policy_type']}",
            action_space=space.name,
            action_dim=int(meta["action_dim"]),
            chunk_len=int(meta["chunk_len"]),
            state_dim=int(meta["state_dim"]),
            image_shapes={k: tuple(v) for k, v in meta["image_shapes"].items()},
            n_action_steps=min(n_action_steps or int(meta["n_action_steps"]), int(meta["chunk_len"])),
            control_hz=space.control_hz,
            gripper_convention=space.gripper_convention,
        )

    def reset(self) -> None:
        self.policy.reset()

    @torch.inference_mode()
    def predict_chunk(self, batch: Mapping[str, Any]) -> np.ndarray:
        b = validate_batch(self.spec, batch)
        meta = self.processor.meta
        inputs = self.processor.preprocessor(
            to_lerobot_batch(batch, list(meta["image_shapes"]), meta["rename_map"])
        )
        chunk = self.policy.predict_action_chunk(inputs)[:, : self.spec.chunk_len]  # (B, T, A) normalised
        t, a = chunk.shape[1], chunk.shape[2]
        actions = self.processor.postprocessor(chunk.reshape(b * t, a)).reshape(b, t, a)
        return validate_chunk(self.spec, actions.float().cpu().numpy(), b)


def load_lerobot_policy(path: str | Path, device: str = "auto", n_action_steps: int | None = None,
                        **unused: Any) -> LerobotProtocolPolicy:  # fmt: skip
    """Factory for `vla.policies.load_policy("vla.interop.lerobot.protocol_policy:load_lerobot_policy", path=...)`."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    policy, processor = load_checkpoint(path, device=device)
    return LerobotProtocolPolicy(
        policy,
        processor,
        device,
        policy_id=f"lerobot-checkpoint:{Path(path).resolve()}",
        n_action_steps=n_action_steps,
    )
