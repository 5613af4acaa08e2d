"""`PionVLAPolicy`: a checkpoint of this stack behind lerobot's `PreTrainedPolicy` API.

    lerobot-eval --env.discover_packages_path=vla.interop.lerobot --policy.path=<checkpoint dir> --env.type=libero

lerobot hands the policy its own batch format (images float (B, 3, H, W) in [0, 1] after the env processor's
180° flip, `observation.state` (B, 8), `task` list[str], `action` (B, T, A) when training); `to_protocol_batch`
turns it into the `vla.protocol` batch (uint8 (B, H, W, 3)), resizing images to the checkpoint's input size
when the env renders another one. Inference goes through `vla.models.policy.TorchPolicy` (validation, the
checkpoint's processor and stats, unnormalisation, LIBERO's raw gripper convention); training through the
same `PolicyProcessor(train=True)` and `model.compute_loss` as pion-train. Saving writes our checkpoint format
(`vla.models.checkpoint.save_pretrained`) plus lerobot's config keys, so the directory loads in both.
"""

from __future__ import annotations

import json
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from lerobot.policies.pretrained import PreTrainedPolicy
from torch import Tensor

from vla.interop.lerobot.configuration_pion_vla import ACTION_FEATURE, POLICY_TYPE, PionVLAConfig
from vla.models import checkpoint
from vla.models.policy import TorchPolicy
from vla.models.processor import PAD_KEY, PolicyProcessor
from vla.protocol import STATE_KEY, TASK_KEY


def to_uint8_images(images: Tensor, shape: tuple[int, int, int]) -> np.ndarray:
    """float (B, 3, H, W) in [0, 1] -> uint8 (B, h, w, 3) of the checkpoint's `shape` (antialiased resize if needed)."""
    h, w, _ = shape
    x = images.detach().float().cpu()
    if x.ndim == 3:
        x = x.unsqueeze(0)
    if tuple(x.shape[-2:]) != (h, w):
        x = F.interpolate(x, size=(h, w), mode="bilinear", antialias=True, align_corners=False)
    return x.clamp(0, 1).mul(255).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()


def to_protocol_batch(batch: dict[str, Any], image_shapes: dict[str, tuple[int, int, int]]) -> dict[str, Any]:
    """lerobot batch -> `vla.protocol` batch (+ `action`, `action_is_pad` when present)."""
    missing = [k for k in (STATE_KEY, TASK_KEY, *image_shapes) if k not in batch]
    if missing:
        raise KeyError(f"pion_vla: the batch lacks {missing} (has {sorted(batch)})")
    state = batch[STATE_KEY].detach().float().cpu()
    out: dict[str, Any] = {
        STATE_KEY: (state.unsqueeze(0) if state.ndim == 1 else state).numpy(),
        TASK_KEY: [batch[TASK_KEY]] if isinstance(batch[TASK_KEY], str) else list(batch[TASK_KEY]),
    }
    for key, shape in image_shapes.items():
        out[key] = to_uint8_images(batch[key], shape)
    if batch.get(ACTION_FEATURE) is not None:  # lerobot's pipelines leave action=None at inference
        out[ACTION_FEATURE] = batch[ACTION_FEATURE].detach().float().cpu()
        if batch.get(PAD_KEY) is not None:
            out[PAD_KEY] = batch[PAD_KEY].detach().bool().cpu()
    return out


class PionVLAPolicy(PreTrainedPolicy):
    """A `vla_adapter` / `flow_matching` model and its processor as a lerobot policy (type `pion_vla`)."""

    config_class = PionVLAConfig
    name = POLICY_TYPE

    def __init__(
        self,
        config: PionVLAConfig,
        model: torch.nn.Module | None = None,
        processor: PolicyProcessor | None = None,
        **unused: Any,  # lerobot's make_policy also passes dataset_stats / dataset_meta
    ) -> None:
        super().__init__(config)
        if model is None or processor is None:
            raise ValueError(
                "pion_vla policies start from a checkpoint (pion-train, or vla.models.checkpoint.init_checkpoint "
                "for a random one): pass --policy.path=<checkpoint dir>"
            )
        config.validate_features()
        self.model, self.processor = model, processor
        self.runner = TorchPolicy(
            model, processor, device=config.device or "cpu", n_action_steps=config.n_action_steps
        )
        self._queue: deque[Tensor] = deque()

    @property
    def spec(self):
        """The `vla.protocol.PolicySpec` of the wrapped checkpoint (action space, chunk, cameras)."""
        return self.runner.spec

    @classmethod
    def from_pretrained(
        cls, pretrained_name_or_path: str | Path, *, config: PionVLAConfig | None = None, **kwargs
    ):
        """Load with `vla.models.checkpoint.from_pretrained` (all its checks), on `config.device`."""
        path = Path(pretrained_name_or_path)
        if config is None:
            config = PionVLAConfig.from_pretrained(path)
        model, processor = checkpoint.from_pretrained(path, device=config.device or "cpu")
        if model.config.model_type != config.model_type:
            raise checkpoint.CheckpointError(
                f"{path}: config.json says pion_vla model_type {config.model_type!r}, the weights are "
                f"{model.config.model_type!r}"
            )
        return cls(config, model=model, processor=processor).eval()

    def _save_pretrained(self, save_directory: Path, state_dict: dict[str, Tensor] | None = None) -> None:
        """Our checkpoint format, then lerobot's config keys merged into the same config.json."""
        checkpoint.save_pretrained(save_directory, self.model, self.processor)
        ours = json.loads((save_directory / checkpoint.CONFIG_FILE).read_text())
        self.config._save_pretrained(save_directory)
        theirs = json.loads((save_directory / checkpoint.CONFIG_FILE).read_text())
        merged = {**theirs, **ours}
        (save_directory / checkpoint.CONFIG_FILE).write_text(json.dumps(merged, indent=2))

    def get_optim_params(self) -> dict[str, Tensor]:
        """Named parameters, so the routed optimizers can apply their presets by name."""
        return dict(self.named_parameters())

    def reset(self) -> None:
        self._queue.clear()

    def forward(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict]:
        """Training loss of the wrapped model (pion-train's processor and loss)."""
        proto = to_protocol_batch(batch, self.spec.image_shapes)
        device = next(self.model.parameters()).device
        inputs = {k: v.to(device) for k, v in self.processor(proto, train=self.training).items()}
        loss, metrics = self.model.compute_loss(inputs)
        return loss, dict(metrics)

    @torch.no_grad()
    def predict_action_chunk(self, batch: dict[str, Tensor], **kwargs) -> Tensor:
        """Unnormalised action chunk (B, chunk_len, action_dim) in the checkpoint's action space."""
        chunk = self.runner.predict_chunk(to_protocol_batch(batch, self.spec.image_shapes))
        return torch.from_numpy(chunk)

    @torch.no_grad()
    def select_action(self, batch: dict[str, Tensor], **kwargs) -> Tensor:
        """Next action (B, action_dim): a new chunk every `n_action_steps` steps (open loop in between)."""
        if not self._queue:
            chunk = self.predict_action_chunk(batch)[:, : self.spec.n_action_steps]
            self._queue.extend(chunk.transpose(0, 1))
        return self._queue.popleft()
