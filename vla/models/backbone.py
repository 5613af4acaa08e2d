"""The shared VLM under both policies: fused DINOv2 + SigLIP vision, a 3-layer projector, Qwen2.

Reference: ../shared/reference/models.md §1.1 (Prismatic `prism-qwen25-extra-dinosiglip-224px-0_5b`).

    cfg = BackboneConfig.real()            # Qwen2.5-0.5B + DINOv2-L/14 (reg4) + SigLIP-So400m/14 at 224
    cfg = BackboneConfig.cpu()             # same classes, 4-layer towers and LLM of width 128, byte vocab
    vlm = VLMBackbone(cfg)                 # policies subclass it, so parameter names are flat:
                                           #   vision_backbone.{dino,siglip}.*, projector.fc{1,2,3}.*,
                                           #   language_model.*  (what vla/optim/routing.py expects)
    vis = vlm.embed_images(pixel_values)   # (B, n_images, 6, H, W) -> (B, n_images * P, llm_hidden)
    tok = vlm.embed_tokens(input_ids)      # (B, S) -> (B, S, llm_hidden)
    emb, mask, qpos = vlm.embed_multimodal(pixel_values, input_ids, attention_mask, queries)
                                           # token 0 + image tokens + tokens 1..; the last Q real tokens
                                           # (processor placeholders) replaced by `queries` (Q, llm_hidden)
    hs  = vlm.run_language_model(embeds, attention_mask)  # tuple of L+1 tensors (B, S', llm_hidden):
                                           #   hs[0] = input embeddings, hs[i] = layer i output,
                                           #   hs[L] = final layer after the final RMSNorm (HF convention)
    load_pretrained_weights(vlm, cfg)      # from cfg.{dino,siglip,llm}_path (local HF dirs or hub ids)

Vision: each tower's *second-to-last* block output (timm `get_intermediate_layers(n={N-2})`, no final
norm), patch tokens only (CLS and register tokens dropped), DINO ⊕ SigLIP channel-concatenated;
cameras are concatenated along the patch axis. `pixel_values` carries 6 channels per image: 3
ImageNet-normalised (DINO) then 3 (x-0.5)/0.5 (SigLIP) — see vla/models/processor.py.

The towers are built with only the blocks that are read (`feature_layer`), and without the final
LayerNorm / SigLIP pooling head: the reference never reads them, and unused trainable parameters would
only confuse optimizers and DDP. Loaders drop those keys explicitly (`_UNUSED_TOWER_KEYS`).
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import (
    Dinov2Config,
    Dinov2Model,
    Dinov2WithRegistersConfig,
    Dinov2WithRegistersModel,
    Qwen2Config,
    Qwen2Model,
    SiglipVisionConfig,
    SiglipVisionModel,
)

from vla.config import check_keys


@dataclass
class BackboneConfig:
    """Sizes of the three parts and where their weights come from. Defaults are the real size."""

    image_size: int = 224  # square input side of both towers (pixels)
    patch_size: int = 14  # ViT patch side, shared by both towers so their patch grids align
    feature_layer: int = -2  # which block output to read: -2 = second-to-last (reference); -1 = last
    dino_hidden: int = 1024  # DINOv2-L width
    dino_layers: int = 24  # depth of the pretrained tower (blocks after `feature_layer` are not built)
    dino_heads: int = 16
    dino_mlp_ratio: int = 4  # MLP width = ratio · dino_hidden
    dino_registers: int = 4  # register tokens (timm vit_large_patch14_reg4); 0 -> plain Dinov2Model
    siglip_hidden: int = 1152  # SigLIP-So400m width
    siglip_layers: int = 27
    siglip_heads: int = 16
    siglip_mlp: int = 4304
    llm_hidden: int = 896  # Qwen2.5-0.5B
    llm_layers: int = 24
    llm_heads: int = 14
    llm_kv_heads: int = 2  # grouped-query attention
    llm_mlp: int = 4864
    rope_theta: float = 1.0e6
    vocab_size: int = 151936  # embedding rows (>= tokenizer length)
    max_position_embeddings: int = 32768
    rms_norm_eps: float = 1.0e-6
    attn_implementation: str = "sdpa"  # "sdpa" | "eager" (HF attention kernels)
    dino_path: str | None = None  # local HF dir (or hub id) of a Dinov2[WithRegisters]Model
    siglip_path: str | None = None  # local HF dir (or hub id) of a SigLIP (vision) model
    llm_path: str | None = None  # local HF dir (or hub id) of a Qwen2 model; also holds the tokenizer
    prismatic_path: str | None = None  # Prismatic / VLA-Adapter checkpoint (see vla/models/prismatic.py)

    def __post_init__(self) -> None:
        for name in ("image_size", "patch_size", "dino_hidden", "dino_layers", "siglip_hidden", "llm_hidden"):
            if getattr(self, name) <= 0:
                raise ValueError(f"backbone.{name} must be positive, got {getattr(self, name)}")
        if self.image_size % self.patch_size:
            raise ValueError(
                f"backbone.image_size {self.image_size} must be a multiple of patch_size {self.patch_size}"
            )
        for tower, layers in (("dino", self.dino_layers), ("siglip", self.siglip_layers)):
            if not -layers <= self.feature_layer <= -1:
                raise ValueError(
                    f"backbone.feature_layer {self.feature_layer} out of range for {tower} depth {layers}"
                )
        for prefix in ("dino", "siglip", "llm"):
            hidden, heads = getattr(self, f"{prefix}_hidden"), getattr(self, f"{prefix}_heads")
            if hidden % heads:
                raise ValueError(
                    f"backbone.{prefix}_hidden {hidden} is not divisible by {prefix}_heads {heads}"
                )
        if self.llm_heads % self.llm_kv_heads:
            raise ValueError(f"backbone.llm_heads {self.llm_heads} must be a multiple of llm_kv_heads")
        if self.dino_registers < 0:
            raise ValueError("backbone.dino_registers must be >= 0")
        if self.attn_implementation not in ("sdpa", "eager"):
            raise ValueError(
                f"backbone.attn_implementation must be 'sdpa' or 'eager', got {self.attn_implementation!r}"
            )

    @classmethod
    def real(cls, **overrides: Any) -> BackboneConfig:
        """Qwen2.5-0.5B + DINOv2-L/14 reg4 + SigLIP-So400m/14 at 224² (models.md §1.1)."""
        return cls(**overrides)

    @classmethod
    def cpu(cls, **overrides: Any) -> BackboneConfig:
        """Same classes at a size that trains on 2 CPU cores (byte vocabulary from vla/models/tokenizer.py)."""
        small = dict(
            image_size=128, patch_size=32, dino_hidden=128, dino_layers=4, dino_heads=4, dino_registers=0,
            siglip_hidden=128, siglip_layers=4, siglip_heads=4, siglip_mlp=512, llm_hidden=128, llm_layers=4,
            llm_heads=4, llm_kv_heads=2, llm_mlp=512, rope_theta=1.0e4, vocab_size=264, max_position_embeddings=1024,
        )  # fmt: skip
        return cls(**{**small, **overrides})

    @property
    def patches_per_image(self) -> int:
        return (self.image_size // self.patch_size) ** 2

    @property
    def vision_dim(self) -> int:
        return self.dino_hidden + self.siglip_hidden

    def built_layers(self, depth: int) -> int:
        """Blocks actually built for a tower of `depth` blocks (those up to `feature_layer`)."""
        return depth + self.feature_layer + 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BackboneConfig:
        check_keys(cls, d, "backbone config")
        return cls(**d)


# Keys of the full pretrained towers that the built towers do not have (besides blocks past `feature_layer`).
_UNUSED_TOWER_KEYS = (
    "layernorm.",
    "vision_model.post_layernorm.",
    "vision_model.head.",
    "embeddings.mask_token",
)


def _dino_config(cfg: BackboneConfig) -> Dinov2Config:
    kwargs = dict(
        hidden_size=cfg.dino_hidden, num_hidden_layers=cfg.built_layers(cfg.dino_layers),
        num_attention_heads=cfg.dino_heads, mlp_ratio=cfg.dino_mlp_ratio, image_size=cfg.image_size,
        patch_size=cfg.patch_size, num_channels=3, layerscale_value=1.0, layer_norm_eps=1e-6,
    )  # fmt: skip
    if cfg.dino_registers:
        return Dinov2WithRegistersConfig(num_register_tokens=cfg.dino_registers, **kwargs)
    return Dinov2Config(**kwargs)


def _siglip_config(cfg: BackboneConfig) -> SiglipVisionConfig:
    return SiglipVisionConfig(
        hidden_size=cfg.siglip_hidden, num_hidden_layers=cfg.built_layers(cfg.siglip_layers),
        num_attention_heads=cfg.siglip_heads, intermediate_size=cfg.siglip_mlp, image_size=cfg.image_size,
        patch_size=cfg.patch_size, num_channels=3, vision_use_head=False, layer_norm_eps=1e-6,
    )  # fmt: skip


def qwen2_config(cfg: BackboneConfig) -> Qwen2Config:
    return Qwen2Config(
        vocab_size=cfg.vocab_size, hidden_size=cfg.llm_hidden, intermediate_size=cfg.llm_mlp,
        num_hidden_layers=cfg.llm_layers, num_attention_heads=cfg.llm_heads,
        num_key_value_heads=cfg.llm_kv_heads, max_position_embeddings=cfg.max_position_embeddings,
        rope_theta=cfg.rope_theta, rms_norm_eps=cfg.rms_norm_eps, tie_word_embeddings=True,
        use_sliding_window=False, use_cache=False,
    )  # fmt: skip


class FusedVisionBackbone(nn.Module):
    """DINOv2 ⊕ SigLIP patch features of the second-to-last block; images folded into the batch."""

    def __init__(self, cfg: BackboneConfig) -> None:
        super().__init__()
        dino_cfg, siglip_cfg = _dino_config(cfg), _siglip_config(cfg)
        for c in (dino_cfg, siglip_cfg):
            c._attn_implementation = cfg.attn_implementation
        self.dino = (Dinov2WithRegistersModel if cfg.dino_registers else Dinov2Model)(dino_cfg)
        self.siglip = SiglipVisionModel(siglip_cfg)
        # Never read (features come before the final norm; no pooling): not built, so never trained.
        self.dino.layernorm = nn.Identity()
        self.siglip.vision_model.post_layernorm = nn.Identity()
        self.dino.embeddings.mask_token.requires_grad_(False)  # only used for masked-image pretraining
        self.num_prefix_tokens = 1 + cfg.dino_registers  # CLS (+ registers) ahead of DINO's patches

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(B, n, 6, H, W) -> (B, n·P, dino_hidden + siglip_hidden)."""
        b, n = pixel_values.shape[:2]
        px = pixel_values.flatten(0, 1)
        dino = self.dino.encoder(self.dino.embeddings(px[:, :3])).last_hidden_state[
            :, self.num_prefix_tokens :
        ]
        sig_in = self.siglip.vision_model.embeddings(px[:, 3:])
        siglip = self.siglip.vision_model.encoder(inputs_embeds=sig_in).last_hidden_state
        fused = torch.cat([dino, siglip], dim=-1)
        return fused.reshape(b, n * fused.shape[1], fused.shape[2])


class FusedProjector(nn.Module):
    """fc1(v → 4v) → GELU → fc2(→ llm) → GELU → fc3(llm → llm) (Prismatic `FusedMLPProjector`)."""

    def __init__(self, vision_dim: int, llm_dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(vision_dim, 4 * vision_dim)
        self.fc2 = nn.Linear(4 * vision_dim, llm_dim)
        self.fc3 = nn.Linear(llm_dim, llm_dim)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc3(self.act(self.fc2(self.act(self.fc1(x)))))


class VLMBackbone(nn.Module):
    """Vision towers + projector + Qwen2 decoder (causal, GQA). Policies subclass this."""

    def __init__(self, cfg: BackboneConfig) -> None:
        super().__init__()
        self.backbone_config = cfg
        self.vision_backbone = FusedVisionBackbone(cfg)
        self.projector = FusedProjector(cfg.vision_dim, cfg.llm_hidden)
        llm_cfg = qwen2_config(cfg)
        llm_cfg._attn_implementation = cfg.attn_implementation
        self.language_model = Qwen2Model(llm_cfg)

    @property
    def patches_per_image(self) -> int:
        return self.backbone_config.patches_per_image

    def embed_images(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(B, n_images, 6, H, W) float -> projected patch tokens (B, n_images · P, llm_hidden)."""
        if pixel_values.ndim != 5 or pixel_values.shape[2] != 6:
            raise ValueError(f"pixel_values must be (B, n_images, 6, H, W), got {tuple(pixel_values.shape)}")
        return self.projector(self.vision_backbone(pixel_values))

    def embed_tokens(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.language_model.embed_tokens(input_ids)

    def embed_multimodal(
        self,
        pixel_values: torch.Tensor,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        queries: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The LLM input: token 0, the image tokens, then tokens 1.. (Prismatic inserts vision after BOS).

        The last `Q = len(queries)` real tokens of each (right-padded) row are the processor's placeholders;
        their embeddings are replaced by `queries` (Q, D). Returns (embeds (B, 1+V+S-1, D), attention mask,
        query positions (B, Q) in the returned sequence).
        """
        b, q = input_ids.shape[0], queries.shape[0]
        lengths = attention_mask.sum(dim=1)
        if bool((lengths < q + 1).any()):
            raise ValueError(f"every prompt needs at least one token before its {q} query placeholders")
        text = self.embed_tokens(input_ids).clone()
        rows = torch.arange(b, device=input_ids.device)[:, None]
        text_pos = lengths[:, None] - q + torch.arange(q, device=input_ids.device)[None]
        text[rows, text_pos] = queries.to(text.dtype).unsqueeze(0).expand(b, -1, -1)
        vision = self.embed_images(pixel_values).to(text.dtype)
        embeds = torch.cat([text[:, :1], vision, text[:, 1:]], dim=1)
        ones = attention_mask.new_ones(b, vision.shape[1])
        mask = torch.cat([attention_mask[:, :1], ones, attention_mask[:, 1:]], dim=1)
        return embeds, mask, text_pos + vision.shape[1]

    def run_language_model(
        self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        """All L+1 hidden states of the causal decoder (right padding; positions 0..S-1)."""
        out = self.language_model(
            inputs_embeds=inputs_embeds,
            attention_mask=attention_mask,
            use_cache=False,
            output_hidden_states=True,
        )
        return out.hidden_states


def _tower_state_dict(hf_model: nn.Module, built_layers: int, target: nn.Module) -> dict[str, torch.Tensor]:
    """Pretrained tower weights restricted to the built blocks, position embeddings resampled if needed."""
    out = {}
    for key, value in hf_model.state_dict().items():
        if key.startswith(_UNUSED_TOWER_KEYS):
            continue
        parts = key.split(".")
        if "layer" in parts or "layers" in parts:
            idx = parts.index("layer") if "layer" in parts else parts.index("layers")
            if int(parts[idx + 1]) >= built_layers:
                continue
        out[key] = value
    own = target.state_dict()
    for key in ("embeddings.position_embeddings", "vision_model.embeddings.position_embedding.weight"):
        if key in out and key in own and out[key].shape != own[key].shape:
            out[key] = resample_position_embeddings(
                out[key], own[key].shape, has_cls=key.startswith("embeddings.")
            )
    return out


def resample_position_embeddings(pos: torch.Tensor, shape: torch.Size, has_cls: bool) -> torch.Tensor:
    """Bicubic resampling of a square patch grid of position embeddings (timm does this at 224²)."""
    cls, grid = (pos[..., :1, :], pos[..., 1:, :]) if has_cls else (None, pos)
    n_new = shape[-2] - (1 if has_cls else 0)
    side, new_side = math.isqrt(grid.shape[-2]), math.isqrt(n_new)
    dim = grid.shape[-1]
    g = grid.reshape(1, side, side, dim).permute(0, 3, 1, 2).float()
    g = nn.functional.interpolate(
        g, size=(new_side, new_side), mode="bicubic", align_corners=False, antialias=True
    )
    g = g.permute(0, 2, 3, 1).reshape(*grid.shape[:-2], new_side * new_side, dim).to(pos.dtype)
    return torch.cat([cls, g], dim=-2) if cls is not None else g


def load_pretrained_weights(vlm: VLMBackbone, cfg: BackboneConfig) -> None:
    """Load each part from its HF-format directory (or hub id). Refuses partial or mismatched loads."""
    tower = vlm.vision_backbone
    for key in ("dino_path", "siglip_path", "llm_path", "prismatic_path"):
        path = getattr(cfg, key)
        if path and not Path(path).exists() and (os.environ.get("HF_HUB_OFFLINE") or key == "prismatic_path"):
            raise FileNotFoundError(
                f"backbone.{key}={path!r} does not exist (and the hub is offline); download the weights there, "
                f"set PION_WEIGHTS_DIR, or override model.backbone.{key}"
            )
    if cfg.dino_path:
        hf = (Dinov2WithRegistersModel if cfg.dino_registers else Dinov2Model).from_pretrained(cfg.dino_path)
        sd = _tower_state_dict(hf, cfg.built_layers(cfg.dino_layers), tower.dino)
        _load_checked(tower.dino, sd, cfg.dino_path)
    if cfg.siglip_path:
        hf = SiglipVisionModel.from_pretrained(cfg.siglip_path)
        sd = _tower_state_dict(hf, cfg.built_layers(cfg.siglip_layers), tower.siglip)
        _load_checked(tower.siglip, sd, cfg.siglip_path)
    if cfg.llm_path:
        _load_checked(vlm.language_model, Qwen2Model.from_pretrained(cfg.llm_path).state_dict(), cfg.llm_path)
    if cfg.prismatic_path:
        from vla.models.prismatic import load_prismatic_checkpoint

        load_prismatic_checkpoint(vlm, cfg.prismatic_path)


def _load_checked(module: nn.Module, sd: dict[str, torch.Tensor], source: str) -> None:
    """load_state_dict that names every missing / unexpected / mis-shaped key before touching anything."""
    own_sd = module.state_dict()
    own = {k for k in own_sd if not k.endswith("mask_token")}
    missing, unexpected = sorted(own - set(sd)), sorted(set(sd) - set(own_sd))
    bad_shape = sorted(k for k in own & set(sd) if own_sd[k].shape != sd[k].shape)
    if missing or unexpected or bad_shape:
        raise ValueError(
            f"weights from {source} do not fit the configured backbone (missing {missing[:5]}, unexpected "
            f"{unexpected[:5]}, wrong shape {bad_shape[:5]}); make the backbone sizes in the model config match "
            f"that model's config.json"
        )
    module.load_state_dict(sd, strict=False)
