"""VLA-Adapter (models.md §1): a VLM whose every layer feeds a Bridge-Attention L1 action head.

Read top to bottom:
    embed_prefix      [token 0] + image tokens + prompt, the placeholders replaced by ActionQuery embeddings
    vlm_features      all L+1 LLM hidden states -> per-layer raw vision features h_t and query features h_a
    predict_actions   the Pro Bridge-Attention head (block i reads layer i+1) + proprio projector -> (B, T, A)
    compute_loss      L1 on normalised actions, padded chunk steps masked
    sample_actions    the same prediction without the training input noise

Parameter names (routing, vla/optim/routing.py): vision_backbone.*, projector.*, language_model.* (VLMBackbone),
action_queries.weight, proprio_projector.fc{1,2}.*, action_head.* with the final Linear `action_head.fc2`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from vla.models.backbone import VLMBackbone
from vla.models.vla_adapter.config import VLAAdapterConfig


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([-x2, x1], dim=-1)


def apply_rope(x: torch.Tensor, base: float) -> torch.Tensor:
    """1-D rotary embedding over the token axis (-2) of (..., N, head_dim); positions 0..N-1."""
    n, d = x.shape[-2], x.shape[-1]
    inv_freq = base ** (-torch.arange(0, d, 2, device=x.device, dtype=torch.float32) / d)
    angles = torch.arange(n, device=x.device, dtype=torch.float32)[:, None] * inv_freq[None]
    angles = torch.cat([angles, angles], dim=-1)
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
    return x * cos + rotate_half(x) * sin


class ProprioProjector(nn.Module):
    """Linear(proprio → D) → GELU → Linear(D → D): the only way proprio enters the policy."""

    def __init__(self, proprio_dim: int, dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(proprio_dim, dim)
        self.fc2 = nn.Linear(dim, dim)

    def forward(self, proprio: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(proprio)))


class BridgeAttentionBlock(nn.Module):
    """Pro block: queries from the action tokens; ONE softmax over self, adapter (h_a ⊕ p) and raw (h_t) keys.

    The raw-token logits are scaled by g = tanh(gating_factor) (0 at init), so at init the raw tokens get
    uniform attention, not zero. The attention output is added to x and fed to the FFN
    (ReLU(Linear(LayerNorm(·)))); there is no residual around the FFN.
    """

    # per-head optimizer mode (vla/optim/heads.py): heads on the output axis of Q/K/V, on the input axis of O
    head_projections = {**dict.fromkeys(("q_proj", "k_self", "v_self", "k_adapter", "v_adapter", "k_task", "v_task"), 0),
                        "o_proj": 1}  # fmt: skip

    def __init__(self, dim: int, heads: int, rope_base: float) -> None:
        super().__init__()
        self.heads, self.head_dim, self.rope_base = heads, dim // heads, rope_base
        self.q_proj = nn.Linear(dim, dim)
        self.k_self, self.v_self = nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.k_adapter, self.v_adapter = nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.k_task, self.v_task = nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.o_proj = nn.Linear(dim, dim)
        self.gating_factor = nn.Parameter(torch.zeros(1))
        self.ffn_norm = nn.LayerNorm(dim)
        self.ffn = nn.Linear(dim, dim)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        return x.unflatten(-1, (self.heads, self.head_dim)).transpose(1, 2)  # (B, H, N, dh)

    def attention_weights(self, x: torch.Tensor, adapter: torch.Tensor, raw: torch.Tensor) -> torch.Tensor:
        """Softmax weights (B, H, T, T + n_adapter + n_raw) over [self | adapter | raw] keys."""
        rope = lambda t: apply_rope(self._split(t), self.rope_base)  # noqa: E731
        q = rope(self.q_proj(x))
        logits_self = q @ rope(self.k_self(x)).transpose(-1, -2)
        logits_adapter = q @ rope(self.k_adapter(adapter)).transpose(-1, -2)
        gate = torch.tanh(self.gating_factor).to(q.dtype)
        logits_raw = gate * (q @ rope(self.k_task(raw)).transpose(-1, -2))
        logits = torch.cat([logits_self, logits_adapter, logits_raw], dim=-1) / math.sqrt(self.head_dim)
        return logits.softmax(dim=-1)

    def forward(self, x: torch.Tensor, adapter: torch.Tensor, raw: torch.Tensor) -> torch.Tensor:
        weights = self.attention_weights(x, adapter, raw)
        values = torch.cat(
            [
                self._split(self.v_self(x)),
                self._split(self.v_adapter(adapter)),
                self._split(self.v_task(raw)),
            ],
            dim=2,
        )
        attended = (weights @ values).transpose(1, 2).flatten(2)  # (B, T, D)
        return F.relu(self.ffn(self.ffn_norm(self.o_proj(attended) + x)))


class BridgeAttentionHead(nn.Module):
    """MLPResNet of the reference: zero input (+ train noise) → LN → fc1 → ReLU → blocks → LN → fc2."""

    def __init__(self, cfg: VLAAdapterConfig) -> None:
        super().__init__()
        dim = cfg.backbone.llm_hidden
        self.chunk_len, self.input_dim = cfg.chunk_len, cfg.action_dim * dim
        self.layer_norm1 = nn.LayerNorm(self.input_dim)
        self.fc1 = nn.Linear(self.input_dim, dim)
        self.blocks = nn.ModuleList(
            BridgeAttentionBlock(dim, cfg.head_heads, cfg.rope_base) for _ in range(cfg.head_blocks)
        )
        self.layer_norm2 = nn.LayerNorm(dim)
        self.fc2 = nn.Linear(dim, cfg.action_dim)

    def forward(
        self, raw: list[torch.Tensor], queries: list[torch.Tensor], proprio: torch.Tensor, noise_std: float
    ) -> torch.Tensor:
        """raw[i] (B, P, D) and queries[i] (B, Q, D) of LLM layer i+1 for block i; proprio (B, 1, D)."""
        b = proprio.shape[0]
        x = proprio.new_zeros(b, self.chunk_len, self.input_dim)
        if noise_std > 0:
            x = x + noise_std * torch.randn_like(x)
        x = F.relu(self.fc1(self.layer_norm1(x)))
        for block, h_t, h_a in zip(self.blocks, raw, queries):
            x = block(x, adapter=torch.cat([h_a, proprio], dim=1), raw=h_t)
        return self.fc2(self.layer_norm2(x))


class VLAAdapter(VLMBackbone):
    """VLA-Adapter-Pro policy; the model API of docs/DESIGN.md (compute_loss / sample_actions)."""

    def __init__(self, config: VLAAdapterConfig) -> None:
        super().__init__(config.backbone)
        self.config = config
        dim = config.backbone.llm_hidden
        self.action_queries = nn.Embedding(config.num_action_queries, dim)
        nn.init.zeros_(self.action_queries.weight)
        self.proprio_projector = ProprioProjector(config.proprio_dim, dim)
        self.action_head = BridgeAttentionHead(config)

    def embed_prefix(
        self, inputs: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """LLM input embeddings, attention mask and the ActionQuery positions (B, Q)."""
        return self.embed_multimodal(
            inputs["pixel_values"], inputs["input_ids"], inputs["attention_mask"], self.action_queries.weight
        )

    def vlm_features(self, inputs: dict[str, torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Per head block i: raw vision features h_t and query features h_a, both from LLM layer i+1."""
        embeds, mask, query_pos = self.embed_prefix(inputs)
        hidden = self.run_language_model(embeds, mask)
        p, offset = self.config.num_raw_tokens, 0 if self.config.reference_offsets else 1
        if self.config.reference_offsets:
            query_pos = (
                query_pos - 1
            )  # next-token alignment inherited from OFT: last prompt token + Q-1 queries
        rows = torch.arange(embeds.shape[0], device=embeds.device)[:, None]
        layers = hidden[1 : 1 + self.config.head_blocks]
        raw = [h[:, offset : offset + p] for h in layers]
        queries = [h[rows, query_pos] for h in layers]
        return raw, queries

    def predict_actions(self, inputs: dict[str, torch.Tensor], noise_std: float = 0.0) -> torch.Tensor:
        """Normalised actions (B, chunk_len, action_dim)."""
        self._check_inputs(inputs)
        raw, queries = self.vlm_features(inputs)
        proprio = self.proprio_projector(inputs["proprio"].to(raw[0].dtype)).unsqueeze(1)
        return self.action_head(raw, queries, proprio, noise_std)

    def compute_loss(self, inputs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        pred = self.predict_actions(inputs, noise_std=self.config.train_input_noise_std).float()
        target = inputs["action"].to(pred.device, torch.float32)
        if target.shape != pred.shape:
            raise ValueError(f"action targets {tuple(target.shape)} != predictions {tuple(pred.shape)}")
        l1 = (pred - target).abs()
        keep = torch.ones_like(l1[..., 0])
        if self.config.mask_padded_actions and "action_is_pad" in inputs:
            keep = (~inputs["action_is_pad"].to(pred.device)).float()
        loss = (l1 * keep[..., None]).sum() / (keep.sum() * l1.shape[-1]).clamp(min=1.0)
        with torch.no_grad():
            per_dim = (l1 * keep[..., None]).sum(dim=(0, 1)) / keep.sum().clamp(min=1.0)
        metrics = {
            "l1": float(loss.detach()),
            "l1_gripper": float(per_dim[-1]),
            "l1_arm": float(per_dim[:-1].mean()),
        }
        return loss, metrics

    @torch.no_grad()
    def sample_actions(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.predict_actions(inputs, noise_std=0.0)

    def _check_inputs(self, inputs: dict[str, torch.Tensor]) -> None:
        px = inputs["pixel_values"]
        if px.ndim != 5 or px.shape[1] != self.config.num_images:
            raise ValueError(
                f"pixel_values {tuple(px.shape)} must hold num_images={self.config.num_images} images (B, n, 6, H, W)"
            )
        if inputs["proprio"].shape[-1] != self.config.proprio_dim:
            raise ValueError(
                f"proprio has dim {inputs['proprio'].shape[-1]}, model expects {self.config.proprio_dim}"
            )
