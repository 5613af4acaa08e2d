"""VLA-Adapter configuration (models.md §1): the reference's LIBERO constants as explicit fields."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

from vla.config import check_keys
from vla.models.backbone import BackboneConfig


@dataclass
class VLAAdapterConfig:
    """VLM + ActionQuery tokens + Pro Bridge-Attention head, trained with L1 on normalised action chunks."""

    model_type: ClassVar[str] = "vla_adapter"

    backbone: BackboneConfig = field(default_factory=BackboneConfig)  # the shared VLM (sizes, weight paths)
    num_images: int = 2  # cameras (third-person + wrist); raw-token count = num_images · patches per image
    chunk_len: int = 8  # NUM_ACTIONS_CHUNK
    n_action_steps: int = 8  # executed open-loop per query (reference: the whole chunk)
    action_dim: int = 7  # ACTION_DIM
    proprio_dim: int = 8  # PROPRIO_DIM
    num_action_queries: int = 64  # NUM_TOKENS: learned ActionQuery embeddings (zero-initialised)
    head_blocks: int | None = None  # Bridge-Attention blocks; block i reads LLM layer i+1; None = LLM depth
    head_heads: int = 8  # attention heads of each block (head_dim = llm_hidden / head_heads)
    rope_base: float = 10000.0  # 1-D RoPE base of the head (q / self keys, adapter keys, raw-token keys)
    train_input_noise_std: float = 0.02  # N(0, σ) added to the zero head input in training (reference)
    reference_offsets: bool = True  # the reference's slices: raw = token 0 + first P-1 patches,
    #                                 queries = last prompt token + first Q-1 queries (off-by-one, see DESIGN)
    mask_padded_actions: bool = True  # L1 ignores chunk steps past the episode end (action_is_pad)

    def __post_init__(self) -> None:
        if isinstance(self.backbone, Mapping):
            self.backbone = BackboneConfig.from_dict(dict(self.backbone))
        for name in (
            "num_images",
            "chunk_len",
            "action_dim",
            "proprio_dim",
            "num_action_queries",
            "head_heads",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"vla_adapter.{name} must be positive, got {getattr(self, name)}")
        if not 1 <= self.n_action_steps <= self.chunk_len:
            raise ValueError(f"vla_adapter.n_action_steps {self.n_action_steps} must be in [1, chunk_len]")
        if self.head_blocks is None:
            self.head_blocks = self.backbone.llm_layers
        if not 1 <= self.head_blocks <= self.backbone.llm_layers:
            raise ValueError(
                f"vla_adapter.head_blocks {self.head_blocks} must be in [1, llm_layers={self.backbone.llm_layers}]"
                " (block i reads LLM layer i+1)"
            )
        if self.backbone.llm_hidden % self.head_heads or (self.backbone.llm_hidden // self.head_heads) % 2:
            raise ValueError(
                f"vla_adapter.head_heads {self.head_heads} must split llm_hidden {self.backbone.llm_hidden}"
                " into an even head_dim (RoPE)"
            )
        if self.train_input_noise_std < 0:
            raise ValueError("vla_adapter.train_input_noise_std must be >= 0")

    @property
    def num_raw_tokens(self) -> int:
        """Vision tokens fed to the head as h_t (the reference's hard-coded 512 = 2 × 256)."""
        return self.num_images * self.backbone.patches_per_image

    @property
    def num_queries(self) -> int:
        """Placeholder tokens the processor appends to the prompt."""
        return self.num_action_queries

    def processor_fields(self) -> dict[str, Any]:
        """ProcessorConfig values that must agree with the model (vla.models.registry.build_processor)."""
        return {
            "image_size": self.backbone.image_size,
            "num_queries": self.num_action_queries,
            "state_dim": self.proprio_dim,
            "action_dim": self.action_dim,
            "chunk_len": self.chunk_len,
        }

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["backbone"] = self.backbone.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> VLAAdapterConfig:
        check_keys(cls, d, "vla_adapter config")
        return cls(**dict(d))
