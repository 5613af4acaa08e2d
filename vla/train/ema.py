"""Exponential moving average of the trainable parameters (float32 shadow), exported like the model."""

from __future__ import annotations

import copy

import torch
from torch import nn


def _full(p: torch.Tensor) -> torch.Tensor:
    p = p.detach()
    return p.full_tensor() if hasattr(p, "full_tensor") else p  # FSDP2 DTensor: the whole logical tensor


class EMA:
    """shadow ← decay·shadow + (1 − decay)·param after each update (a plain copy before `start_step`)."""

    def __init__(self, model: nn.Module, decay: float, start_step: int = 0) -> None:
        self.decay = float(decay)
        self.start_step = int(start_step)
        self.names = [n for n, p in model.named_parameters() if p.requires_grad]
        params = dict(model.named_parameters())
        self.shadow = {n: _full(params[n]).float().clone() for n in self.names}

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        params = dict(model.named_parameters())
        for n in self.names:
            p = _full(params[n])
            if step < self.start_step:
                self.shadow[n].copy_(p)
            else:
                self.shadow[n].lerp_(p.float(), 1.0 - self.decay)

    @torch.no_grad()
    def copy_to(self, model: nn.Module) -> nn.Module:
        """A deep copy of `model` (a plain, unsharded module) carrying the EMA weights."""
        clone = copy.deepcopy(model)
        params = dict(clone.named_parameters())
        for n in self.names:
            params[n].data.copy_(self.shadow[n].to(params[n].dtype))
        return clone

    def state_dict(self) -> dict:
        return {"decay": self.decay, "start_step": self.start_step, "shadow": self.shadow}

    def load_state_dict(self, state: dict) -> None:
        missing = set(self.names) - set(state["shadow"])
        if missing:
            raise ValueError(f"EMA state lacks {len(missing)} parameters, e.g. {sorted(missing)[:3]}")
        self.decay, self.start_step = float(state["decay"]), int(state["start_step"])
        for n in self.names:
            self.shadow[n].copy_(state["shadow"][n])
