"""Pion: Muon's loop with a spectral high-pass instead of whitening (arXiv 2605.19282).

Newton–Schulz runs k_p Promotion steps f_p(σ) = 1.875σ − 1.25σ³ + 0.375σ⁵ and then
k_s = ns_steps − k_p Suppression steps f_s(σ) = 2.5σ³ − 1.5σ⁵. After Frobenius normalisation the
composed filter sends σ above a cut-off to 1 and σ below it to 0; k_p is the one knob (larger k_p,
lower cut-off: ≈0.80, 0.49, 0.26, 0.13, 0.06, 0.02 for k_p = 0…5). The official default is k_p = 0.

    opt = Pion(action_head_matrices, lr=1e-4, promotion_steps=0, scale_factor=0.2)

With k_p ≤ 2 at most a few dozen directions can pass, so by default (`low_rank=None`) the update is
computed from the top singular triplets (`low_rank.py`) whenever that is much cheaper than NS.
Expect many exactly-zero updates with k_p = 0: a matrix whose normalised momentum has no direction
above the cut-off gets none. That is the official behaviour.
"""

from __future__ import annotations

import torch

from vla.optim.low_rank import low_rank_filter, rank_bound
from vla.optim.newton_schulz import NSSchedule, newton_schulz, pion_schedule
from vla.optim.orthogonalized import OrthogonalizedOptimizer, ns_compute_dtype

LOW_RANK_AUTO_MAX_K_P = 2  # the fast path is chosen automatically only up to this k_p
LOW_RANK_MIN_SPEEDUP = 4  # ... and only if rank + oversample ≤ min(rows, cols) / this


class Pion(OrthogonalizedOptimizer):
    """Pion optimizer (whole-matrix or per-head).

    Args:
        lr, momentum, nesterov, weight_decay, eps, ns_dtype: as in `Muon`.
        promotion_steps: k_p ∈ [0, ns_steps]; the remaining ns_steps − k_p steps are Suppression.
        ns_steps: total polynomial steps (5).
        lr_scale, scale_factor: update = s·sqrt(max(rows, cols))·O by default (s = 0.2 as in the
            VLA-Adapter / VLANeXt recipes; the official library default is 2.0, verl uses 5.0).
        num_heads, head_split_dim: per-head mode (rows, cols are then one head's).
        low_rank: None = automatic for k_p ≤ 2 on matrices where it pays, True = whenever the filter's
            rank bound is finite, False = always Newton–Schulz.
        low_rank_tol: filter values below this are treated as zero when deriving the rank bound.
        low_rank_oversample, low_rank_power_iters: randomized range-finder settings.
    """

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        momentum: float = 0.95,
        nesterov: bool = True,
        weight_decay: float = 0.01,
        promotion_steps: int = 0,
        ns_steps: int = 5,
        eps: float = 1e-7,
        ns_dtype: str = "bfloat16",
        lr_scale: str = "pion",
        scale_factor: float = 0.2,
        num_heads: int | None = None,
        head_split_dim: int = 0,
        low_rank: bool | None = None,
        low_rank_tol: float = 1e-3,
        low_rank_oversample: int = 8,
        low_rank_power_iters: int = 3,
        *,
        stack_same_shape: bool | None = None,
        distributed: bool | None = None,
        process_group=None,
    ) -> None:
        defaults = dict(
            lr=lr,
            momentum=momentum,
            nesterov=nesterov,
            weight_decay=weight_decay,
            promotion_steps=promotion_steps,
            ns_steps=ns_steps,
            eps=eps,
            ns_dtype=ns_dtype,
            lr_scale=lr_scale,
            scale_factor=scale_factor,
            num_heads=num_heads,
            head_split_dim=head_split_dim,
            low_rank=low_rank,
            low_rank_tol=low_rank_tol,
            low_rank_oversample=low_rank_oversample,
            low_rank_power_iters=low_rank_power_iters,
        )
        super().__init__(
            params,
            defaults,
            stack_same_shape=stack_same_shape,
            distributed=distributed,
            process_group=process_group,
        )

    def _check_options(self, options: dict) -> None:
        super()._check_options(options)
        pion_schedule(options["promotion_steps"], options["ns_steps"])  # raises on bad k_p / ns_steps
        if options["low_rank"] not in (None, True, False):
            raise ValueError(f"low_rank must be None (auto), True or False, got {options['low_rank']!r}")
        if not 0.0 < options["low_rank_tol"] < 1.0:
            raise ValueError(f"Invalid low_rank_tol: {options['low_rank_tol']}")
        if options["low_rank_oversample"] < 0 or options["low_rank_power_iters"] < 0:
            raise ValueError("low_rank_oversample and low_rank_power_iters must be >= 0")

    @staticmethod
    def _schedule(group: dict) -> NSSchedule:
        return pion_schedule(group["promotion_steps"], group["ns_steps"])

    def low_rank_rank(self, group: dict, rows: int, cols: int) -> int | None:
        """Rank used by the fast path for a rows×cols (per-head) matrix of `group`, or None for NS."""
        if group["low_rank"] is False:
            return None
        schedule = self._schedule(group)
        bound = rank_bound(schedule, group["low_rank_tol"])
        if bound is None:
            return None
        if group["low_rank"] is None:
            too_many_steps = group["promotion_steps"] > LOW_RANK_AUTO_MAX_K_P
            too_small = (bound + group["low_rank_oversample"]) * LOW_RANK_MIN_SPEEDUP > min(rows, cols)
            if too_many_steps or too_small:
                return None
        return bound

    _MAP_KEYS = (
        "promotion_steps",
        "ns_steps",
        "eps",
        "ns_dtype",
        "low_rank",
        "low_rank_tol",
        "low_rank_oversample",
        "low_rank_power_iters",
    )

    def _map_key(self, group: dict) -> tuple:
        return ("pion", *(group[k] for k in self._MAP_KEYS))

    def _spectral_map(self, batch: torch.Tensor, group: dict) -> torch.Tensor:
        schedule = self._schedule(group)
        rank = self.low_rank_rank(group, batch.shape[-2], batch.shape[-1])
        dtype = ns_compute_dtype(group["ns_dtype"], batch.device)
        if rank is None:
            return newton_schulz(batch, schedule, eps=group["eps"], compute_dtype=dtype).to(dtype)
        return low_rank_filter(
            batch,
            schedule,
            rank,
            eps=group["eps"],
            oversample=group["low_rank_oversample"],
            power_iters=group["low_rank_power_iters"],
            out_dtype=dtype,
        )
