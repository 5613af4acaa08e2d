"""Muon: momentum orthogonalised by a whitening Newton–Schulz iteration.

    opt = Muon(matrix_params, lr=1e-3)                          # 5 × quintic, update scale 0.2·sqrt(max(A, B))
    opt = Muon(matrix_params, lr_scale="original")              # Keller / torch.optim.Muon scaling
    opt = Muon(matrix_params, ns_schedule="polar_express")      # any registered schedule, or a list of triples

Only ≥2-D parameters; route embeddings, heads and 0/1-D parameters to AdamW (see `routing.py`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from vla.optim.newton_schulz import MUON_QUINTIC, NSSchedule, get_schedule, muon_schedule, newton_schulz
from vla.optim.orthogonalized import OrthogonalizedOptimizer, ns_compute_dtype


class Muon(OrthogonalizedOptimizer):
    """Muon with EMA momentum, optional Nesterov, decoupled weight decay and a named lr-scale convention.

    Args:
        lr, momentum, nesterov, weight_decay: as in torch.optim.Muon (decay uses the unscaled lr).
        ns_steps, ns_coefficients: the classic single-triple schedule, repeated ns_steps times.
        ns_schedule: overrides the two above with a registry name or a list of per-step (a, b, c).
        eps: added to the Frobenius norm before dividing (a zero gradient gives a zero update).
        ns_dtype: "bfloat16" (reference behaviour), "float32" (for CPUs without native bf16 matmul,
            where bf16 measured 40–90× slower; see docs/benchmarks.md) or "auto" (bf16 on CUDA; on CPU
            the faster of the two, measured once per process).
        lr_scale, scale_factor: shape factor on lr, see `lr_scale.py`; default s·sqrt(max(A, B)), s = 0.2.
        num_heads, head_split_dim: per-head mode for every parameter of the group (see `heads.py`).
        stack_same_shape, distributed, process_group: see `OrthogonalizedOptimizer`.
    """

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        momentum: float = 0.95,
        nesterov: bool = True,
        weight_decay: float = 0.01,
        ns_steps: int = 5,
        ns_coefficients: Sequence[float] = MUON_QUINTIC,
        ns_schedule: str | NSSchedule | Sequence[Sequence[float]] | None = None,
        eps: float = 1e-7,
        ns_dtype: str = "bfloat16",
        lr_scale: str = "pion",
        scale_factor: float = 0.2,
        num_heads: int | None = None,
        head_split_dim: int = 0,
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
            ns_steps=ns_steps,
            ns_coefficients=tuple(ns_coefficients),
            ns_schedule=ns_schedule,
            eps=eps,
            ns_dtype=ns_dtype,
            lr_scale=lr_scale,
            scale_factor=scale_factor,
            num_heads=num_heads,
            head_split_dim=head_split_dim,
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
        if len(options["ns_coefficients"]) != 3:
            raise ValueError(
                f"ns_coefficients must be one (a, b, c) triple, got {options['ns_coefficients']}"
            )
        self._schedule(options)  # raises on a bad ns_steps or schedule name

    @staticmethod
    def _schedule(group: dict) -> NSSchedule:
        if group["ns_schedule"] is not None:
            return get_schedule(group["ns_schedule"])
        return muon_schedule(group["ns_steps"], tuple(group["ns_coefficients"]))

    def _map_key(self, group: dict) -> tuple:
        return ("muon", self._schedule(group), group["eps"], group["ns_dtype"])

    def _spectral_map(self, batch: torch.Tensor, group: dict) -> torch.Tensor:
        dtype = ns_compute_dtype(group["ns_dtype"], batch.device)
        return newton_schulz(batch, self._schedule(group), eps=group["eps"], compute_dtype=dtype).to(dtype)
