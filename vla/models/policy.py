"""TorchPolicy: a model + its processor behind the policy protocol (vla.protocol.Policy).

    policy = TorchPolicy(model, processor, device="cpu", dtype=None)   # or checkpoint.load_policy_dir(dir)
    chunk = policy.predict_chunk(batch)        # float32 (B, chunk_len, action_dim), libero_raw gripper

The batch is validated against `policy.spec` first (`ProtocolError` on a mismatch), then goes through the
same `PolicyProcessor.__call__(batch, train=False)` the trainer uses, so inference sees exactly the inputs
of evaluation-mode training.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from vla.conventions import action_space
from vla.models.processor import PolicyProcessor
from vla.protocol import PolicySpec, validate_batch, validate_chunk

ACTION_SPACE = "libero_osc_delta"  # a model config without `action_space` predicts LIBERO actions
OUTPUT_GRIPPER_CONVENTION = "libero_raw"  # PolicyProcessor.unnormalize_actions returns -1 open / +1 close


class TorchPolicy:
    """Validates, processes, runs `model.sample_actions`, unnormalises; stateless across steps."""

    def __init__(
        self,
        model: nn.Module,
        processor: PolicyProcessor,
        device: str | torch.device = "cpu",
        dtype: torch.dtype | str | None = None,
        n_action_steps: int | None = None,
        policy_id: str | None = None,
        rtc_max_guidance_weight: float | None = None,
        rtc_schedule: str | None = None,
    ) -> None:
        self.model, self.processor, self.device = model.eval(), processor, torch.device(device)
        self._configure_rtc(rtc_max_guidance_weight, rtc_schedule)
        self.dtype = getattr(torch, dtype) if isinstance(dtype, str) else dtype
        cfg = model.config
        # the space the checkpoint declares (model config); its rate, and its gripper convention unless the
        # processor converts the gripper column (then libero_raw, see PolicyProcessor.unnormalize_actions)
        space = action_space(getattr(cfg, "action_space", ACTION_SPACE))
        gripper = (
            OUTPUT_GRIPPER_CONVENTION if processor.cfg.gripper_dim is not None else space.gripper_convention
        )
        self.spec = PolicySpec(
            policy_id=policy_id or cfg.model_type,
            action_space=space.name,
            action_dim=cfg.action_dim,
            chunk_len=cfg.chunk_len,
            state_dim=cfg.proprio_dim,
            image_shapes=processor.cfg.image_shapes,
            n_action_steps=n_action_steps or cfg.n_action_steps,
            control_hz=space.control_hz,
            gripper_convention=gripper,
        )

    def _configure_rtc(self, max_guidance_weight: float | None, schedule: str | None) -> None:
        """Real-time chunking knobs of a flow-matching model (vla/models/flow_matching/rtc.py); None keeps
        the model's. Refused, naming the model type, for a model without RTC."""
        if max_guidance_weight is None and schedule is None:
            return
        if not hasattr(self.model, "rtc"):
            raise ValueError(
                f"rtc_max_guidance_weight / rtc_schedule are real-time-chunking knobs of flow-matching policies; "
                f"this checkpoint is a {self.model.config.model_type!r} model, which has no RTC"
            )
        from dataclasses import replace

        changes = {"max_guidance_weight": max_guidance_weight, "schedule": schedule}
        self.model.rtc = replace(self.model.rtc, **{k: v for k, v in changes.items() if v is not None})

    def reset(self) -> None:
        """No per-episode state: the caller's chunk executor owns the action queue."""

    def model_inputs(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        """The processed inputs of a validated observation batch, on the policy's device."""
        validate_batch(self.spec, batch)
        inputs = self.processor(batch, train=False)
        return {k: v.to(self.device) for k, v in inputs.items()}

    @torch.inference_mode()
    def predict_chunk(self, batch: Mapping[str, Any]) -> np.ndarray:
        inputs = self.model_inputs(batch)
        autocast = (
            torch.autocast(self.device.type, dtype=self.dtype)
            if self.dtype is not None
            else contextlib.nullcontext()
        )
        kwargs = {}
        if hasattr(self.model, "rtc"):  # flow matching: real-time chunking toward the pending actions
            from vla.models.flow_matching.rtc import prefix_from_batch

            prefix = prefix_from_batch(batch, self.processor.normalize_actions, self.device)
            kwargs = {} if prefix is None else {"prefix": prefix}
        with autocast:
            normalised = self.model.sample_actions(inputs, **kwargs)
        chunk = self.processor.unnormalize_actions(normalised.float()).numpy()
        return validate_chunk(self.spec, chunk, chunk.shape[0])
