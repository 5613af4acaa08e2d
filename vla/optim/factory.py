"""Build an optimizer from a plain config dict (or an OmegaConf DictConfig), as in `configs/optim/*.yaml`.

    cfg = {"preset": "vla_adapter", "lr": 1e-4, "weight_decay": 0.01,
           "pion": {"promotion_steps": 0, "scale_factor": 0.2}}
    opt = build_optimizer(model, cfg)

Keys: preset, lr, weight_decay, aux_lr_ratio, per_head, rules, pion, muon, adamw, verbose, and an
optional descriptive `name`. Unknown keys raise, so a typo in a config does not go unnoticed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from vla.optim.routed import RoutedOptimizer

_KEYS = {
    "preset",
    "lr",
    "weight_decay",
    "aux_lr_ratio",
    "per_head",
    "rules",
    "pion",
    "muon",
    "adamw",
    "verbose",
}


def _plain(cfg: Any) -> dict:
    if hasattr(cfg, "_metadata"):  # OmegaConf containers; imported lazily so omegaconf stays optional
        from omegaconf import OmegaConf

        cfg = OmegaConf.to_container(cfg, resolve=True)
    if not isinstance(cfg, Mapping):
        raise TypeError(f"optimizer config must be a mapping, got {type(cfg).__name__}")
    return dict(cfg)


def build_optimizer(model: nn.Module, cfg: Any, **overrides) -> RoutedOptimizer:
    """A `RoutedOptimizer` for `model` configured by `cfg` (keyword overrides win over `cfg`)."""
    options = {**_plain(cfg), **overrides}
    options.pop("name", None)
    unknown = set(options) - _KEYS
    if unknown:
        raise ValueError(
            f"unknown optimizer config keys {sorted(unknown)}; expected a subset of {sorted(_KEYS)}"
        )
    for child in ("pion", "muon", "adamw"):
        if options.get(child) is not None:
            options[child] = dict(options[child])
            if "betas" in options[child]:
                options[child]["betas"] = tuple(options[child]["betas"])
    return RoutedOptimizer(model, **options)
