"""Learning-rate schedules as multipliers of each param group's base lr (so AdamW's aux ratio is kept).

`factor(k)` is the multiplier used for update k (0-based):

    warmup     k < W:  (k + 1) / W                     never a zero-lr first update
    cosine     k ≥ W:  m + (1 − m)·½(1 + cos(π·min(1, (k − W)/(D − W))))   D = decay_steps (default: steps)
    multistep         gamma ** #{milestones ≤ k}       torch MultiStepLR semantics (reference: gamma 0.1)
    constant          1

The schedule objects are plain picklable callables, so `LambdaLR.state_dict()` stores them and a resumed
run continues on the same curve.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from vla.train.config import ScheduleConfig


@dataclass
class LRFactor:
    """lr multiplier for update k (see the module docstring)."""

    name: str
    warmup_steps: int
    total_steps: int
    min_lr_ratio: float = 0.0
    milestones: tuple[int, ...] = ()
    gamma: float = 0.1

    def __call__(self, k: int) -> float:
        if k < self.warmup_steps:
            warm = (k + 1) / self.warmup_steps
            return warm * (
                self.gamma ** bisect.bisect_right(self.milestones, k) if self.name == "multistep" else 1.0
            )
        if self.name == "constant":
            return 1.0
        if self.name == "multistep":
            return self.gamma ** bisect.bisect_right(self.milestones, k)
        span = max(1, self.total_steps - self.warmup_steps)
        progress = min(1.0, (k - self.warmup_steps) / span)
        return self.min_lr_ratio + (1.0 - self.min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def lr_factor(cfg: ScheduleConfig, steps: int) -> LRFactor:
    return LRFactor(
        name=cfg.name,
        warmup_steps=cfg.warmup_steps,
        total_steps=cfg.decay_steps if cfg.decay_steps is not None else steps,
        min_lr_ratio=cfg.min_lr_ratio,
        milestones=tuple(cfg.milestones),
        gamma=cfg.gamma,
    )


def build_scheduler(optimizer: Optimizer, cfg: ScheduleConfig, steps: int) -> LambdaLR:
    """A LambdaLR applying `lr_factor(cfg, steps)` to every param group; call `.step()` after each update."""
    if cfg.name == "cosine" and cfg.warmup_steps >= (cfg.decay_steps or steps):
        raise ValueError(f"schedule.warmup_steps={cfg.warmup_steps} leaves no cosine phase in {steps} steps")
    return LambdaLR(optimizer, lr_factor(cfg, steps))
