"""The DiT action expert: adaLN-Zero blocks that attend jointly to their own tokens and one VLM layer.

Block i reads the hidden states of VLM layer i (VLANeXt's "soft" connection). Its attention takes the
normalised, time-modulated action tokens as queries and the concatenation [own tokens ; Linear(h_i)] as
keys and values, so self- and cross-attention share one softmax. Time conditions every block through
adaLN-Zero: shift / scale / gate come from a zero-initialised Linear(SiLU(t_emb)), so at initialisation
every block is the identity and the output layer (also zero-initialised) predicts velocity 0.

Names matter for optimizer routing (vla/optim/routing.py): the whole module sits under `action_head.`,
the output layer is `final_layer`, the time MLP is `t_embedder` and the position table `pos_embed`
(both caught by the presets' `embed` rule), and the attention has q/k/v/o_proj + head_dim so per-head
optimizer mode finds it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """x (B, L, D) * (1 + scale) + shift, with per-sample (B, D) shift/scale."""
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal features of a (B,) float tensor: [cos(t·f_k), sin(t·f_k)], f_k = max_period^(-k/half)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    return emb


class TimestepEmbedder(nn.Module):
    """t in [0, 1] → sinusoidal features of t·time_scale → Linear → SiLU → Linear."""

    def __init__(self, hidden: int, freq_dim: int = 256, time_scale: float = 1000.0):
        super().__init__()
        self.freq_dim = freq_dim
        self.time_scale = time_scale
        self.mlp = nn.Sequential(nn.Linear(freq_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        freq = timestep_embedding(t * self.time_scale, self.freq_dim)
        return self.mlp(freq.to(self.mlp[0].weight.dtype))


class JointAttention(nn.Module):
    """Multi-head attention: queries from x, keys/values from kv (which starts with x itself)."""

    def __init__(self, hidden: int, num_heads: int):
        super().__init__()
        if hidden % num_heads:
            raise ValueError(f"expert hidden {hidden} is not divisible by expert heads {num_heads}")
        self.num_heads = num_heads
        self.head_dim = hidden // num_heads
        self.q_proj = nn.Linear(hidden, hidden)
        self.k_proj = nn.Linear(hidden, hidden)
        self.v_proj = nn.Linear(hidden, hidden)
        self.o_proj = nn.Linear(hidden, hidden)

    def forward(self, x: torch.Tensor, kv: torch.Tensor, kv_mask: torch.Tensor | None = None) -> torch.Tensor:
        b, lq, d = x.shape

        def heads(t: torch.Tensor) -> torch.Tensor:
            return t.view(b, -1, self.num_heads, self.head_dim).transpose(1, 2)

        q, k, v = heads(self.q_proj(x)), heads(self.k_proj(kv)), heads(self.v_proj(kv))
        mask = None if kv_mask is None else kv_mask[:, None, None, :]  # (B, 1, 1, Lkv), True = attend
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.o_proj(out.transpose(1, 2).reshape(b, lq, d))


class ExpertBlock(nn.Module):
    """adaLN-Zero DiT block with joint self/VLM attention (VLANeXt `MoEBlock`)."""

    def __init__(self, hidden: int, vlm_hidden: int, num_heads: int, mlp_ratio: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(hidden, elementwise_affine=False, eps=1e-6)
        self.attn = JointAttention(hidden, num_heads)
        self.vlm_proj = nn.Linear(vlm_hidden, hidden)
        self.norm2 = nn.LayerNorm(hidden, elementwise_affine=False, eps=1e-6)
        mlp_hidden = int(hidden * mlp_ratio)
        self.mlp = nn.Sequential(
            nn.Linear(hidden, mlp_hidden), nn.GELU(approximate="tanh"), nn.Linear(mlp_hidden, hidden)
        )
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden, 6 * hidden))

    def forward(
        self, x: torch.Tensor, c: torch.Tensor, context: torch.Tensor, context_mask: torch.Tensor | None
    ) -> torch.Tensor:
        """`context` is this block's `vlm_proj(h_i)` (see `ActionExpert.project_context`)."""
        shift_a, scale_a, gate_a, shift_m, scale_m, gate_m = self.adaLN_modulation(c).chunk(6, dim=-1)
        xn = modulate(self.norm1(x), shift_a, scale_a)
        kv = torch.cat([xn, context.to(xn.dtype)], dim=1)
        kv_mask = None
        if context_mask is not None:  # own tokens always visible; padded VLM positions hidden
            own = torch.ones(x.shape[0], x.shape[1], dtype=torch.bool, device=x.device)
            kv_mask = torch.cat([own, context_mask.bool()], dim=1)
        x = x + gate_a.unsqueeze(1) * self.attn(xn, kv, kv_mask)
        return x + gate_m.unsqueeze(1) * self.mlp(modulate(self.norm2(x), shift_m, scale_m))


class FinalLayer(nn.Module):
    """adaLN (shift, scale) then a zero-initialised Linear to the action dimension."""

    def __init__(self, hidden: int, out_dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(hidden, elementwise_affine=False, eps=1e-6)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden, 2 * hidden))
        self.linear = nn.Linear(hidden, out_dim)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=-1)
        return self.linear(modulate(self.norm(x), shift, scale))


class ActionExpert(nn.Module):
    """Noisy action chunk (B, T, A), time (B,), per-layer VLM states → velocity (B, T, A).

    The VLM hidden states (a sequence of (B, L, vlm_hidden) tensors) enter through `project_context`: the
    last `depth` of them are used, one per block, in order (block 0 reads the earliest of those layers).
    """

    def __init__(
        self,
        action_dim: int,
        vlm_hidden: int,
        hidden: int,
        depth: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        max_positions: int = 256,
        freq_dim: int = 256,
        time_scale: float = 1000.0,
    ):
        super().__init__()
        self.depth = depth
        self.input_proj = nn.Linear(action_dim, hidden)
        self.pos_embed = nn.Parameter(torch.zeros(1, max_positions, hidden))
        self.t_embedder = TimestepEmbedder(hidden, freq_dim, time_scale)
        self.blocks = nn.ModuleList(
            ExpertBlock(hidden, vlm_hidden, num_heads, mlp_ratio) for _ in range(depth)
        )
        self.final_layer = FinalLayer(hidden, action_dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """DiT initialisation: xavier linears, N(0, 0.02) positions and time MLP, adaLN-Zero."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)
        nn.init.normal_(self.pos_embed, std=0.02)
        nn.init.normal_(self.t_embedder.mlp[0].weight, std=0.02)
        nn.init.normal_(self.t_embedder.mlp[2].weight, std=0.02)
        zero = [block.adaLN_modulation[-1] for block in self.blocks]
        zero += [self.final_layer.adaLN_modulation[-1], self.final_layer.linear]
        for linear in zero:
            nn.init.zeros_(linear.weight)
            nn.init.zeros_(linear.bias)

    def project_context(self, vlm_hidden_states: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Each block's Linear(h_i) of the last `depth` VLM hidden states; computed once per VLM pass."""
        if len(vlm_hidden_states) < self.depth:
            raise ValueError(
                f"action expert has {self.depth} blocks but got {len(vlm_hidden_states)} VLM hidden states; "
                "set expert_depth <= the number of hidden states the backbone returns"
            )
        layers = vlm_hidden_states[len(vlm_hidden_states) - self.depth :]
        dtype = self.input_proj.weight.dtype
        return [block.vlm_proj(h.to(dtype)) for block, h in zip(self.blocks, layers)]

    def embed_suffix(self, x_t: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Noisy chunk → tokens Linear(x_t) + position; time → conditioning vector c (B, hidden)."""
        if x_t.shape[1] > self.pos_embed.shape[1]:
            raise ValueError(f"chunk length {x_t.shape[1]} exceeds max_positions {self.pos_embed.shape[1]}")
        tokens = self.input_proj(x_t.to(self.input_proj.weight.dtype)) + self.pos_embed[:, : x_t.shape[1]]
        return tokens, self.t_embedder(t)

    def forward(
        self,
        x_t: torch.Tensor,
        t: torch.Tensor,
        context: Sequence[torch.Tensor],
        context_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Velocity (B, T, A) at (x_t, t); `context` from `project_context`, mask True = real VLM token."""
        x, c = self.embed_suffix(x_t, t)
        for block, ctx in zip(self.blocks, context, strict=True):
            x = block(x, c, ctx, context_mask)
        return self.final_layer(x, c)
