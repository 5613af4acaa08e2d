"""Low-rank fast path: apply a high-pass Newton–Schulz filter through the top singular triplets only.

After Frobenius normalisation Σσᵢ² = 1, so σᵢ ≤ 1/√i. If the composed filter F is below a tolerance
for every σ ≤ t, then only the first ⌊1/t²⌋ singular values can pass it; everything else maps to
(almost) zero. For Pion with k_p = 0 that is one direction, k_p = 1 a handful, k_p = 2 a few dozen.
The update U·F(Σ)·Vᵀ can then be built from those triplets alone:

1. normalise X exactly as the NS path does (same ε, same norm margin);
2. find the top r + oversample singular triplets with a randomized range finder and a few power
   iterations — O(m·n·r) instead of the O(m²·n) of Newton–Schulz;
3. evaluate F on the scalar singular values (exactly, no polynomial rounding on matrices).

The sketch uses a fixed seed, so the same input gives the same output on every call, every rank and
after a resume.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch

from vla.optim.newton_schulz import NSSchedule, scalar_filter

_SKETCH_SEED = 20260519


@lru_cache(maxsize=64)
def filter_cutoff(schedule: NSSchedule, tol: float) -> float:
    """Largest t with F(σ) ≤ tol for all σ ∈ [0, t] (0.0 if F already exceeds tol near 0)."""
    grid = torch.linspace(0.0, 1.0, 20001, dtype=torch.float64)
    above = (scalar_filter(grid, schedule).abs() > tol).nonzero()
    if len(above) == 0:
        return 1.0
    first = int(above[0])
    return float(grid[first - 1]) if first > 0 else 0.0


def rank_bound(schedule: NSSchedule, tol: float = 1e-3) -> int | None:
    """How many directions of a Frobenius-normalised matrix can get F(σ) > tol (None: unbounded)."""
    cutoff = filter_cutoff(schedule, tol)
    if cutoff <= 0.0:
        return None
    return max(1, math.floor(1.0 / cutoff**2))


def top_singular_triplets(
    x: torch.Tensor, k: int, power_iters: int = 3
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Approximate top-k (U, S, Vh) of a batch (B, m, n), m ≤ n, via a randomized range finder.

    Each power iteration applies X Xᵀ and re-orthonormalises on the short side only (an m×k QR),
    which keeps the cost at O(m·n·k) and small σ from underflowing.
    """
    batch, m, n = x.shape
    if k >= m:
        return torch.linalg.svd(x, full_matrices=False)
    gen = torch.Generator(device=x.device).manual_seed(_SKETCH_SEED)
    sketch = torch.randn(n, k, generator=gen, device=x.device, dtype=x.dtype)
    basis = torch.linalg.qr(x @ sketch).Q  # (B, m, k)
    for _ in range(power_iters):
        basis = torch.linalg.qr(x @ (x.mT @ basis)).Q
    small = basis.mT @ x  # (B, k, n): x restricted to the found range
    u_small, s, vh = torch.linalg.svd(small, full_matrices=False)
    return basis @ u_small, s, vh


def low_rank_filter(
    grad: torch.Tensor,
    schedule: NSSchedule,
    rank: int,
    eps: float = 1e-7,
    oversample: int = 8,
    power_iters: int = 3,
    out_dtype: torch.dtype = torch.bfloat16,
) -> torch.Tensor:
    """U·F(Σ)·Vᵀ of the normalised (…, m, n) input, from its top rank + oversample triplets.

    Matches `newton_schulz(grad, schedule, eps)` up to the filter's tail (≤ tol by the choice of
    `rank`) and bf16 rounding of the NS path. Computed in float32; returned in `out_dtype`.
    """
    batch_shape = grad.shape[:-2]
    x = grad.float().reshape(-1, *grad.shape[-2:])
    transposed = x.size(-2) > x.size(-1)
    if transposed:
        x = x.mT
    norm = x.norm(dim=(-2, -1), keepdim=True)
    x = x / (norm * schedule.norm_margin + eps)
    u, s, vh = top_singular_triplets(x, min(rank + oversample, x.size(-2)), power_iters)
    gains = scalar_filter(s, schedule).to(s.dtype)
    out = (u * gains.unsqueeze(-2)) @ vh
    if transposed:
        out = out.mT
    return out.reshape(*batch_shape, *out.shape[-2:]).to(out_dtype)
