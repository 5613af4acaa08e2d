"""Pion and Muon as lerobot optimizer configs: `lerobot-train --optimizer.type=pion` (or `muon`).

    lerobot-train --env.discover_packages_path=vla.interop.lerobot \
        --use_policy_training_preset=false --optimizer.type=pion --optimizer.preset=pion \
        --optimizer.lr=1e-4 --optimizer.pion.promotion_steps=0 --scheduler.type=constant_with_warmup ...

Both build a `vla.optim.RoutedOptimizer` through `vla.optim.build_optimizer`: every parameter is routed to
Pion, Muon or AdamW by a routing preset (`vla/optim/routing.py`: `pion`, `muon`, `vla_adapter`, `vlanext`,
`pi05`, `adamw`, `custom`) plus optional user rules. The keys are those of `configs/optim/pion.yaml`
(a test keeps the defaults equal). lerobot replaces `--optimizer` with the policy's own preset unless
`--use_policy_training_preset=false`, and then also needs a `--scheduler.type`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from lerobot.optim.optimizers import OptimizerConfig, OptimizerParams

from vla.interop.lerobot.params import named_parameters
from vla.optim import PRESETS, build_optimizer


@dataclass
class PionKnobs:
    """Pion's constructor kwargs (`vla.optim.Pion`), applied to every Pion group."""

    promotion_steps: int = 0  # k_p, Promotion steps; k_s = ns_steps - k_p (official default 0)
    ns_steps: int = 5  # total polynomial steps
    momentum: float = 0.95  # EMA momentum μ
    nesterov: bool = True  # Nesterov look-ahead (VLA recipes: on; openpi π0.5: off)
    scale_factor: float = 0.2  # s in s·√max(rows, cols) (VLA recipes 0.2; library 2.0)
    lr_scale: str = "pion"  # pion | original | match_rms_adamw | spectral_norm | spectral
    eps: float = 1e-7  # ε of the Frobenius normalisation
    ns_dtype: str = "auto"  # auto (bf16 on CUDA, the faster one on CPU) | bfloat16 (reference) | float32
    low_rank: bool | None = None  # None: fast path automatically for k_p <= 2 where it pays
    low_rank_tol: float = 1e-3  # filter value below which a direction counts as removed


@dataclass
class MuonKnobs:
    """Muon's constructor kwargs (`vla.optim.Muon`), applied to every Muon group."""

    ns_steps: int = 5
    momentum: float = 0.95
    nesterov: bool = True
    scale_factor: float = 0.2
    lr_scale: str = "pion"
    eps: float = 1e-7
    ns_dtype: str = "auto"


@dataclass
class AdamWKnobs:
    """AdamW's kwargs for the parameters a preset keeps off Pion/Muon (0/1-D, embeddings, ...)."""

    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8


@dataclass
class RoutedOptimizerConfig(OptimizerConfig):
    """Pion / Muon / AdamW routed by a preset; `build` returns a `vla.optim.RoutedOptimizer`.

    Args:
        lr: base learning rate of Pion and Muon; AdamW gets lr · aux_lr_ratio.
        weight_decay: decoupled weight decay of every child.
        grad_clip_norm: gradient clipping norm (applied by lerobot-train).
        preset: routing preset name (`vla.optim.routing.PRESETS`).
        aux_lr_ratio: AdamW lr ratio; None = the preset's (1.0, vlanext 0.1).
        per_head: split attention Q/K/V/O into heads (GQA-aware) for Pion/Muon groups.
        rules: user routing rules tried before the preset: [{bucket, target, pattern, exclude, max_ndim}].
        verbose: print the routing table when the optimizer is built.
    """

    lr: float = 1e-4
    weight_decay: float = 0.01
    grad_clip_norm: float = 10.0
    preset: str = "pion"
    aux_lr_ratio: float | None = None
    per_head: bool = False
    rules: list[dict[str, Any]] = field(default_factory=list)
    verbose: bool = True
    pion: PionKnobs = field(default_factory=PionKnobs)
    muon: MuonKnobs = field(default_factory=MuonKnobs)
    adamw: AdamWKnobs = field(default_factory=AdamWKnobs)

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise ValueError(f"optimizer.preset {self.preset!r} is not one of {sorted(PRESETS)}")

    def to_optim_cfg(self) -> dict[str, Any]:
        """The `configs/optim/*.yaml`-style dict that `vla.optim.build_optimizer` takes."""
        cfg = asdict(self)
        cfg.pop("grad_clip_norm")
        return cfg

    def build(self, params: OptimizerParams) -> torch.optim.Optimizer:
        named = named_parameters(params)
        if self.per_head and named.owner is None:
            raise ValueError("optimizer.per_head needs the module, but only named tensors were given")
        return build_optimizer(named, self.to_optim_cfg())


@OptimizerConfig.register_subclass("pion")
@dataclass
class PionOptimizerConfig(RoutedOptimizerConfig):
    """`--optimizer.type=pion`: every matrix on Pion by default (`preset=pion`); see `RoutedOptimizerConfig`."""

    preset: str = "pion"


@OptimizerConfig.register_subclass("muon")
@dataclass
class MuonOptimizerConfig(RoutedOptimizerConfig):
    """`--optimizer.type=muon`: every matrix on Muon by default (`preset=muon`); see `RoutedOptimizerConfig`."""

    preset: str = "muon"
