"""`PionVLAConfig`: a checkpoint of this stack (vla_adapter / flow_matching) as lerobot policy type `pion_vla`.

The checkpoint's own `config.json` keys (`format_version`, `model_type`, `model`, `processor`; see
`vla/models/checkpoint.py`) are fields here, carried unchanged, so one `config.json` serves both loaders:
`vla.models.checkpoint.from_pretrained` reads its four keys, lerobot reads `type` plus its own fields.
`pion-lerobot-export <dir>` adds the `type` key and lerobot's processor files to an existing checkpoint.

The policy does its own image, prompt and q01/q99 processing (`vla.models.processor.PolicyProcessor`,
stats in `stats.json`), so lerobot's pipelines around it only rename, batch and move tensors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lerobot.configs.policies import PreTrainedConfig
from lerobot.configs.types import FeatureType
from lerobot.optim.optimizers import OptimizerConfig
from lerobot.optim.schedulers import LRSchedulerConfig

from vla.interop.lerobot.optimizers import PionOptimizerConfig
from vla.models.checkpoint import FORMAT_VERSION
from vla.models.registry import MODEL_TYPES

POLICY_TYPE = "pion_vla"
ACTION_FEATURE = "action"


@PreTrainedConfig.register_subclass(POLICY_TYPE)
@dataclass
class PionVLAConfig(PreTrainedConfig):
    """Configuration of a Pion-stack policy inside lerobot.

    Args:
        format_version: checkpoint format of `vla.models.checkpoint` (must match this code's).
        model_type: a key of `vla.models.registry.MODEL_TYPES` (`vla_adapter`, `flow_matching`).
        model: the model config dict (`<ModelConfig>.to_dict()`), as in the checkpoint's config.json.
        processor: the processor config dict (`ProcessorConfig.to_dict()`), as in the checkpoint's config.json.
        n_action_steps: actions executed per model query by `select_action`; None = the model's.
        optimizer_preset: routing preset of the optimizer lerobot-train uses with the policy's training preset
            (`vla_adapter`: action head on Pion, backbone on Muon, embeddings and 0/1-D on AdamW).
        optimizer_lr: learning rate of that optimizer.
    """

    format_version: int = FORMAT_VERSION
    model_type: str = "vla_adapter"
    model: dict[str, Any] = field(default_factory=dict)
    processor: dict[str, Any] = field(default_factory=dict)
    n_action_steps: int | None = None
    optimizer_preset: str = "vla_adapter"
    optimizer_lr: float = 1e-4

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.format_version != FORMAT_VERSION:
            raise ValueError(
                f"pion_vla: checkpoint format_version {self.format_version} != {FORMAT_VERSION} of this code"
            )
        if self.model_type not in MODEL_TYPES:
            raise ValueError(f"pion_vla: model_type {self.model_type!r} is not one of {sorted(MODEL_TYPES)}")
        if self.n_action_steps is not None and self.n_action_steps < 1:
            raise ValueError(f"pion_vla: n_action_steps must be >= 1, got {self.n_action_steps}")

    @property
    def chunk_len(self) -> int:
        return int(self.model.get("chunk_len", 1))

    @property
    def observation_delta_indices(self) -> None:
        return None

    @property
    def action_delta_indices(self) -> list[int]:
        return list(range(self.chunk_len))

    @property
    def reward_delta_indices(self) -> None:
        return None

    def get_optimizer_preset(self) -> OptimizerConfig:
        return PionOptimizerConfig(lr=self.optimizer_lr, preset=self.optimizer_preset)

    def get_scheduler_preset(self) -> LRSchedulerConfig | None:
        return None

    def validate_features(self) -> None:
        """Refuse an env or dataset whose action dimension or cameras the checkpoint cannot serve."""
        action = (self.output_features or {}).get(ACTION_FEATURE)
        want = self.model.get("action_dim")
        if action is not None and want is not None and tuple(action.shape) != (want,):
            raise ValueError(
                f"pion_vla: the checkpoint outputs {want}-D actions, the env/dataset expects {tuple(action.shape)}"
            )
        cameras = {k for k, f in (self.input_features or {}).items() if f.type is FeatureType.VISUAL}
        missing = [k for k in self.processor.get("image_keys", ()) if cameras and k not in cameras]
        if missing:
            raise ValueError(
                f"pion_vla: the checkpoint reads cameras {missing} that the env/dataset lacks (it has {sorted(cameras)});"
                " map them with --rename_map"
            )
