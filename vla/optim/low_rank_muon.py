"""LowRankMuon (LRMuon): keep only the top-k singular directions of the momentum, each at gain 1.

The baseline the Pion paper compares against: an exact float32 SVD of the (Nesterov) momentum,
update = U_k V_kᵀ with k = max(1, min(rank, rows, cols)), then the usual decay and lr scale. It is
a hard spectral cut by *count*, where Pion cuts by *level*; and it pays a full SVD per matrix.
"""

from __future__ import annotations

import torch

from vla.optim.orthogonalized import OrthogonalizedOptimizer


def top_k_polar(batch: torch.Tensor, rank: int) -> torch.Tensor:
    """U_k V_kᵀ of each (rows, cols) matrix in the batch, from a float32 SVD."""
    u, _, vh = torch.linalg.svd(batch.float(), full_matrices=False)
    k = max(1, min(rank, batch.shape[-2], batch.shape[-1]))
    return u[..., :k] @ vh[..., :k, :]


class LowRankMuon(OrthogonalizedOptimizer):
    """Top-k SVD projection of the momentum (arguments as in `Muon`, plus `rank`, default 128)."""

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        momentum: float = 0.95,
        nesterov: bool = True,
        weight_decay: float = 0.01,
        rank: int = 128,
        eps: float = 1e-7,
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
            rank=rank,
            eps=eps,
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
        if int(options["rank"]) < 1:
            raise ValueError(f"Invalid rank: {options['rank']} (need >= 1)")

    def _map_key(self, group: dict) -> tuple:
        return ("low_rank_muon", int(group["rank"]))

    def _spectral_map(self, batch: torch.Tensor, group: dict) -> torch.Tensor:
        # A zero momentum has arbitrary singular vectors; give it a zero update like the NS paths do.
        nonzero = batch.flatten(1).abs().amax(dim=1) > group["eps"]
        out = top_k_polar(batch, int(group["rank"])) * nonzero[:, None, None]
        return out.to(torch.bfloat16)
