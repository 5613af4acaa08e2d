"""Configuration of the flow-matching policy (VLANeXt / π0 family). Every knob is documented in
docs/DESIGN.md ("Flow-matching policy") with the code that reads it.

    cfg = FlowMatchingConfig()                       # real size: Qwen2.5-0.5B backbone, DiT 1024 × 16 heads
    cfg = FlowMatchingConfig.cpu()                   # CPU scale: 4-layer towers / LLM, small DiT
    cfg = FlowMatchingConfig.from_dict(yaml_dict)    # unknown keys fail loudly
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

from vla.config import check_keys
from vla.conventions import ACTION_SPACES
from vla.models.backbone import BackboneConfig
from vla.models.processor import GRIPPER_TARGETS

TIME_SAMPLING = ("beta", "uniform")


@dataclass
class FlowMatchingConfig:
    """VLM (shared backbone) + DiT action expert trained with flow matching (t = 1 is noise)."""

    model_type: ClassVar[str] = "flow_matching"

    backbone: BackboneConfig = field(default_factory=BackboneConfig.real)  # the shared VLM
    num_images: int = 2  # cameras (third-person + wrist), concatenated along the VLM's patch axis
    # --- action chunk and proprio
    chunk_len: int = 8  # actions predicted per query (VLANeXt future_len)
    n_action_steps: int = 8  # actions executed open-loop per query
    action_dim: int = 7
    proprio_dim: int = 8  # state dim fed to proprio_projector (LIBERO: 8; VLANeXt: 7)
    history_len: int = 1  # proprio steps prepended to the VLM input (VLANeXt: 8); 1 = current state only
    # --- soft connection
    num_queries: int = 16  # learnable meta-queries appended to the prompt (processor placeholders)
    # vla.conventions space of the predicted actions, declared by checkpoints (TorchPolicy's spec):
    # libero_osc_delta, or droid_joint_velocity for DROID data (configs/model/flow_matching_droid_cpu.yaml)
    action_space: str = "libero_osc_delta"
    gripper_target: str = "libero_raw"  # processor's gripper training target: -1 open / +1 close keeps every
    #                                     action dim in [-1, 1], the scale of the N(0, I) noise
    # --- DiT action expert
    expert_hidden: int = 1024
    expert_heads: int = 16
    expert_depth: int | None = None  # blocks; block i reads VLM hidden state i of the last `depth`.
    #                                  None = all llm_layers + 1 hidden states (VLANeXt: 29 for Qwen3-VL-2B)
    mlp_ratio: float = 4.0  # expert MLP width = mlp_ratio · expert_hidden
    max_positions: int = 256  # rows of the learned action position table
    time_freq_dim: int = 256  # sinusoidal features of the timestep
    time_embed_scale: float = 1000.0  # t ∈ [0, 1] is embedded as t·scale (VLANeXt: timesteps = σ·1000)
    # --- flow matching
    time_sampling: str = "beta"  # "beta": Beta(α, β)·scale + offset (openpi); "uniform": U(0, 1) (VLANeXt)
    beta_alpha: float = 1.5
    beta_beta: float = 1.0
    beta_scale: float = 0.999
    beta_offset: float = 0.001
    num_inference_steps: int = 10  # Euler steps from t = 1 to 0 (VLANeXt eval: 5)
    # --- auxiliary DCT loss on pred_x0 = x_t − t·v̂ (0 weight switches it off)
    dct_loss_weight: float = 0.1
    dct_low_freq_split: float = 0.125  # first max(1, int(T·split)) coefficients are "low"
    dct_low_freq_weight: float = 5.0
    dct_high_freq_weight: float = 0.0

    def __post_init__(self) -> None:
        if isinstance(self.backbone, Mapping):
            self.backbone = BackboneConfig.from_dict(dict(self.backbone))
        positive = ("num_images", "chunk_len", "n_action_steps", "action_dim", "proprio_dim", "history_len",
                    "num_queries", "expert_hidden", "expert_heads", "max_positions", "time_freq_dim",
                    "num_inference_steps")  # fmt: skip
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"flow_matching.{name} must be >= 1, got {getattr(self, name)}")
        if self.n_action_steps > self.chunk_len:
            raise ValueError(
                f"flow_matching.n_action_steps {self.n_action_steps} > chunk_len {self.chunk_len}"
            )
        if self.expert_hidden % self.expert_heads:
            raise ValueError(
                f"flow_matching.expert_hidden {self.expert_hidden} not divisible by expert_heads {self.expert_heads}"
            )
        available = self.backbone.llm_layers + 1
        if self.expert_depth is None:
            self.expert_depth = available
        if not 1 <= self.expert_depth <= available:
            raise ValueError(
                f"flow_matching.expert_depth {self.expert_depth} must be in [1, {available}] "
                f"(the backbone returns llm_layers + 1 = {available} hidden states); null uses all"
            )
        if self.chunk_len > self.max_positions:
            raise ValueError(f"flow_matching.chunk_len {self.chunk_len} > max_positions {self.max_positions}")
        if self.action_space not in ACTION_SPACES:
            raise ValueError(
                f"flow_matching.action_space must be one of {sorted(ACTION_SPACES)}, got {self.action_space!r}"
            )
        if self.gripper_target not in GRIPPER_TARGETS:
            raise ValueError(
                f"flow_matching.gripper_target must be one of {GRIPPER_TARGETS}, got {self.gripper_target!r}"
            )
        if self.time_sampling not in TIME_SAMPLING:
            raise ValueError(
                f"flow_matching.time_sampling must be one of {TIME_SAMPLING}, got {self.time_sampling!r}"
            )
        if self.beta_alpha <= 0 or self.beta_beta <= 0 or self.beta_scale <= 0 or self.beta_offset < 0:
            raise ValueError("flow_matching beta_alpha/beta_beta/beta_scale must be > 0 and beta_offset >= 0")
        if self.beta_scale + self.beta_offset > 1.0 + 1e-9:
            raise ValueError("flow_matching beta_scale + beta_offset must be <= 1 (t stays in [0, 1])")
        if self.dct_loss_weight < 0 or self.dct_low_freq_weight < 0 or self.dct_high_freq_weight < 0:
            raise ValueError("flow_matching dct_* weights must be >= 0")
        if not 0.0 <= self.dct_low_freq_split <= 1.0:
            raise ValueError(
                f"flow_matching.dct_low_freq_split must be in [0, 1], got {self.dct_low_freq_split}"
            )

    @classmethod
    def cpu(cls, **overrides: Any) -> FlowMatchingConfig:
        """CPU scale: the backbone's CPU size and a 5-block DiT of width 128 (one block per hidden state)."""
        small = dict(backbone=BackboneConfig.cpu(), expert_hidden=128, expert_heads=4, max_positions=32)
        return cls(**{**small, **overrides})

    def processor_fields(self) -> dict[str, Any]:
        """ProcessorConfig values that must agree with the model (vla.models.registry.processor_config)."""
        return {
            "image_size": self.backbone.image_size,
            "num_queries": self.num_queries,
            "state_dim": self.proprio_dim,
            "action_dim": self.action_dim,
            "chunk_len": self.chunk_len,
            "gripper_target": self.gripper_target,
        }

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FlowMatchingConfig:
        d = dict(d)
        model_type = d.pop("model_type", cls.model_type)
        if model_type != cls.model_type:
            raise ValueError(
                f"config of model_type {model_type!r} given to {cls.__name__} ({cls.model_type!r})"
            )
        check_keys(cls, d, "flow_matching config")
        return cls(**d)
