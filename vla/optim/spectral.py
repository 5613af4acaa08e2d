"""Spectral diagnostics for matrix parameters, gradients and optimizer momenta.

What Pion does to a matrix depends only on its normalised singular values σ/‖σ‖₂ (= σ/‖M‖_F):
directions above the filter's cut-off pass, the rest vanish. These helpers measure that, per module,
as flat `{tag: float}` dicts ready for `SummaryWriter.add_scalar`:

    summary = spectral_summary(model.named_parameters(), source="grad", promotion_steps=0)
    for tag, value in summary.items():
        writer.add_scalar(tag, value, step)

    effective_rank(σ)   exp of the entropy of σ/Σσ (1 for rank one, n for a flat spectrum)
    stable_rank(σ)      Σσ² / σ₁²
    top_energy(σ)       σ₁² / Σσ² — Pion k_p = 0 passes a direction only if this ≳ 0.64 (cut-off ≈ 0.8)
    pion_pass_count     how many normalised σ exceed the k_p filter's half-power cut-off
    gradient_snr        ‖mean g‖² / mean ‖g_i − mean g‖² over gradient samples (micro-batches)
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from vla.optim.heads import HeadSplit, split_heads
from vla.optim.low_rank import filter_cutoff
from vla.optim.newton_schulz import pion_schedule


def as_matrix(t: torch.Tensor) -> torch.Tensor:
    """The (rows, −1) view the optimizers orthogonalise."""
    return t.reshape(t.shape[0], -1)


def singular_values(t: torch.Tensor, split: HeadSplit | None = None) -> torch.Tensor:
    """float32 singular values, descending: (k,) for a matrix, (H, k) per head when `split` is given."""
    m = as_matrix(t.detach()).float()
    if split is not None:
        m = split_heads(m, split)
    return torch.linalg.svdvals(m)


def normalised(sigma: torch.Tensor) -> torch.Tensor:
    """σ / ‖σ‖₂ — the singular values Newton–Schulz sees after Frobenius normalisation."""
    return sigma / sigma.norm(dim=-1, keepdim=True).clamp_min(1e-30)


def effective_rank(sigma: torch.Tensor) -> torch.Tensor:
    """exp(H(p)) with p = σ/Σσ (Roy & Vetterli); 0 for an all-zero spectrum."""
    total = sigma.sum(dim=-1, keepdim=True)
    p = sigma / total.clamp_min(1e-30)
    entropy = -(p * torch.log(p.clamp_min(1e-30))).sum(dim=-1)
    return torch.where(total.squeeze(-1) > 0, torch.exp(entropy), torch.zeros_like(entropy))


def stable_rank(sigma: torch.Tensor) -> torch.Tensor:
    return (sigma**2).sum(dim=-1) / (sigma[..., 0] ** 2).clamp_min(1e-30)


def top_energy(sigma: torch.Tensor) -> torch.Tensor:
    """Share of the energy in the largest singular value: max σ² / Σσ² (the input need not be sorted)."""
    s2 = sigma**2
    return s2.amax(dim=-1) / s2.sum(dim=-1).clamp_min(1e-30)


def pion_pass_count(sigma: torch.Tensor, promotion_steps: int = 0, ns_steps: int = 5) -> torch.Tensor:
    """Number of normalised singular values above the Pion filter's half-power cut-off (F = 0.5)."""
    cutoff = filter_cutoff(pion_schedule(promotion_steps, ns_steps), 0.5)
    return (normalised(sigma) > cutoff).sum(dim=-1)


def gradient_snr(samples: torch.Tensor) -> float:
    """‖ḡ‖² / mean‖gᵢ − ḡ‖² for gradient samples stacked on dim 0 (e.g. per micro-batch).

    ≫ 1: the samples agree (signal-dominated); ≈ 1/n for pure noise of n samples.
    """
    if samples.shape[0] < 2:
        raise ValueError("gradient_snr needs at least two samples")
    flat = samples.reshape(samples.shape[0], -1).double()
    mean = flat.mean(dim=0)
    noise = (flat - mean).pow(2).sum(dim=1).mean()
    return float(mean.pow(2).sum() / noise.clamp_min(1e-300))


def _source_tensor(name: str, param: torch.Tensor, source: str, optimizer) -> torch.Tensor | None:
    if source == "param":
        return param
    if source == "grad":
        return param.grad
    if source == "momentum":
        if optimizer is None:
            raise ValueError("source='momentum' needs the optimizer")
        return optimizer.state.get(param, {}).get("momentum_buffer")
    raise ValueError(f"source must be 'param', 'grad' or 'momentum', got {source!r}")


def spectral_summary(
    named_params: Iterable[tuple[str, torch.Tensor]],
    source: str = "grad",
    optimizer=None,
    promotion_steps: int = 0,
    prefix: str = "spectral",
    max_dim: int = 8192,
) -> dict[str, float]:
    """Per-matrix scalars `{prefix}/{name}/{metric}` plus model-wide means under `{prefix}/all/`.

    Skips vectors, missing tensors and matrices with a side above `max_dim` (an SVD there is costly).
    """
    out: dict[str, float] = {}
    per_metric: dict[str, list[float]] = {}
    for name, param in named_params:
        t = _source_tensor(name, param, source, optimizer)
        if t is None or t.ndim < 2 or max(as_matrix(t).shape) > max_dim:
            continue
        sigma = singular_values(t)
        metrics = {
            "sigma_max": float(sigma[0]),
            "effective_rank": float(effective_rank(sigma)),
            "stable_rank": float(stable_rank(sigma)),
            "top_energy": float(top_energy(sigma)),
            f"pion_pass_kp{promotion_steps}": float(pion_pass_count(sigma, promotion_steps)),
        }
        for metric, value in metrics.items():
            out[f"{prefix}/{name}/{metric}"] = value
            per_metric.setdefault(metric, []).append(value)
    for metric, values in per_metric.items():
        out[f"{prefix}/all/{metric}_mean"] = sum(values) / len(values)
    passes = per_metric.get(f"pion_pass_kp{promotion_steps}", [])
    if passes:
        out[f"{prefix}/all/pion_zero_update_fraction"] = sum(v == 0 for v in passes) / len(passes)
    return out
