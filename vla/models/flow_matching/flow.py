"""Flow-matching math, independent of any network (openpi π0 convention: t = 1 is noise, t = 0 is data).

    x_t = t·ε + (1 − t)·a          the straight path from the action a (t = 0) to noise ε (t = 1)
    u   = dx_t/dt = ε − a           the velocity the network regresses
    x_0 ≈ x_t − t·v̂                the clean chunk implied by a velocity estimate (used by the DCT loss)

Sampling integrates dx/dt = v(x, t) with Euler from t = 1 down to t = 0 in N equal steps.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch


def sample_time(
    batch: int,
    mode: str,
    *,
    alpha: float = 1.5,
    beta: float = 1.0,
    scale: float = 0.999,
    offset: float = 0.001,
    device: torch.device | str = "cpu",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """(batch,) training times. `beta`: Beta(α, β)·scale + offset (openpi); `uniform`: U(0, 1) (VLANeXt)."""
    if mode == "uniform":
        return torch.rand(batch, device=device, generator=generator)
    if mode == "beta":
        # Beta via two Gammas so a torch.Generator controls it (torch.distributions takes none).
        ga = torch._standard_gamma(torch.full((batch,), alpha, device=device), generator=generator)
        gb = torch._standard_gamma(torch.full((batch,), beta, device=device), generator=generator)
        return ga / (ga + gb) * scale + offset
    raise ValueError(f"time_sampling must be 'beta' or 'uniform', got {mode!r}")


def noisy_actions(actions: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """x_t = t·ε + (1 − t)·a, with t (B,) broadcast over (B, T, A)."""
    t = t.view(-1, *([1] * (actions.ndim - 1))).to(actions.dtype)
    return t * noise + (1 - t) * actions


def velocity_target(actions: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """u = ε − a: the constant velocity of the straight path."""
    return noise - actions


def predicted_x0(x_t: torch.Tensor, t: torch.Tensor, velocity: torch.Tensor) -> torch.Tensor:
    """x_t − t·v̂: where one Euler step from t to 0 would land."""
    return x_t - t.view(-1, *([1] * (x_t.ndim - 1))).to(x_t.dtype) * velocity


def euler_sample(
    velocity_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], noise: torch.Tensor, num_steps: int
) -> torch.Tensor:
    """Integrate dx/dt = velocity_fn(x, t) from x(1) = noise to t = 0 in `num_steps` Euler steps."""
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")
    x = noise
    dt = -1.0 / num_steps
    for i in range(num_steps):
        t = torch.full((x.shape[0],), 1.0 - i / num_steps, device=x.device, dtype=torch.float32)
        x = x + dt * velocity_fn(x, t)
    return x


def dct_matrix(
    n: int, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """Orthonormal DCT-II matrix D (n, n): coefficients = D @ signal along time."""
    k = torch.arange(n, dtype=torch.float64)[:, None]
    i = torch.arange(n, dtype=torch.float64)[None]
    d = torch.cos(math.pi / n * (i + 0.5) * k) * math.sqrt(2.0 / n)
    d[0] /= math.sqrt(2.0)
    return d.to(device=device, dtype=dtype)


def dct_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    *,
    low_freq_split: float = 0.125,
    low_weight: float = 5.0,
    high_weight: float = 0.0,
) -> torch.Tensor:
    """Weighted MSE between the time-axis DCT coefficients of two (B, T, A) chunks.

    The first max(1, int(T·low_freq_split)) coefficients get `low_weight`, the rest `high_weight`; the mean
    runs over all B·T·A entries (VLANeXt's `_compute_dct_loss`, MSE variant).
    """
    if pred.shape != target.shape or pred.ndim != 3:
        raise ValueError(
            f"dct_loss needs two (B, T, A) tensors of one shape, got {pred.shape}, {target.shape}"
        )
    n = pred.shape[1]
    d = dct_matrix(n, pred.device, torch.float32)
    diff = torch.einsum("kt,bta->bka", d, (pred - target).float())  # DCT is linear: DCT(p) − DCT(t)
    split = max(1, int(n * low_freq_split))
    weights = torch.full((n,), high_weight, device=pred.device)
    weights[:split] = low_weight
    return (diff.square() * weights.view(1, n, 1)).mean()
