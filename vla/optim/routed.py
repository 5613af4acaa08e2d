"""One optimizer object that sends each parameter to Pion, Muon or AdamW according to a routing preset.

    opt = RoutedOptimizer(model, preset="vla_adapter", lr=1e-4, weight_decay=0.01,
                          pion={"promotion_steps": 0, "scale_factor": 0.2})

It behaves like any torch optimizer: `param_groups` lists every group of every child (the same
dict objects, so LR schedulers and `zero_grad` just work), `state_dict()` / `load_state_dict()` cover
all of them, and `step()` steps each child. At construction it prints the routing table.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.optim import Optimizer

from vla.optim.heads import HeadSplit, find_attention_heads
from vla.optim.muon import Muon
from vla.optim.orthogonalized import check_momentum_convention
from vla.optim.pion import Pion
from vla.optim.routing import PRESETS, Rule, format_routing_table, parse_rules, route_parameters

_CLASSES: dict[str, Callable[..., Optimizer]] = {"pion": Pion, "muon": Muon, "adamw": torch.optim.AdamW}


class RoutedOptimizer(Optimizer):
    """Pion / Muon / AdamW behind one optimizer interface.

    Args:
        model: the module whose named parameters are routed (frozen ones are skipped).
        preset: a name from `routing.PRESETS`.
        lr, weight_decay: base values for every child; AdamW gets lr · aux_lr_ratio.
        aux_lr_ratio: None = the preset's (1.0, or 0.1 for vlanext).
        rules: user rules (`Rule` or dicts with bucket, target, pattern, exclude, max_ndim), tried first.
        per_head: split attention projections found by `find_attention_heads` into heads (Pion/Muon).
        pion, muon, adamw: extra constructor kwargs for each child (may override lr / weight_decay).
        verbose: print the routing table; `print_fn` receives it.
    """

    def __init__(
        self,
        model: nn.Module,
        preset: str = "vla_adapter",
        lr: float = 1e-4,
        weight_decay: float = 0.01,
        aux_lr_ratio: float | None = None,
        rules: Sequence[Rule | dict] | None = None,
        per_head: bool = False,
        pion: dict | None = None,
        muon: dict | None = None,
        adamw: dict | None = None,
        verbose: bool = True,
        print_fn: Callable[[str], None] = print,
    ) -> None:
        if not lr >= 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not weight_decay >= 0.0:
            raise ValueError(f"Invalid weight_decay: {weight_decay}")
        if aux_lr_ratio is not None and not aux_lr_ratio > 0.0:
            raise ValueError(f"Invalid aux_lr_ratio: {aux_lr_ratio}")
        if preset not in PRESETS:
            raise ValueError(f"unknown routing preset {preset!r}; choose one of {sorted(PRESETS)}")
        ratio = PRESETS[preset].aux_lr_ratio if aux_lr_ratio is None else aux_lr_ratio
        self.routes = route_parameters(model.named_parameters(), preset, parse_rules(rules))
        self.preset = preset
        splits = find_attention_heads(model) if per_head else {}

        child_kwargs = {
            "pion": {"lr": lr, "weight_decay": weight_decay, **(pion or {})},
            "muon": {"lr": lr, "weight_decay": weight_decay, **(muon or {})},
            "adamw": {"lr": lr * ratio, "weight_decay": weight_decay, **(adamw or {})},
        }
        grouped: dict[tuple[str, str, HeadSplit | None], list[torch.Tensor]] = {}
        for route in self.routes:
            target = route.rule.target
            split = splits.get(route.name) if target != "adamw" else None
            grouped.setdefault((target, route.rule.bucket, split), []).append(route.param)

        self.children: dict[str, Optimizer] = {}
        for target in ("muon", "pion", "adamw"):
            groups = []
            for (t, bucket, split), params in grouped.items():
                if t != target:
                    continue
                group = {"params": params, "bucket": bucket}
                if split is not None:
                    group.update(num_heads=split.num_heads, head_split_dim=split.split_dim)
                groups.append(group)
            if groups:
                self.children[target] = _CLASSES[target](groups, **child_kwargs[target])

        self._building = True
        placeholder = [{"params": list(g["params"])} for c in self.children.values() for g in c.param_groups]
        super().__init__(placeholder, {})  # sets up torch's hook bookkeeping; groups replaced below
        self._building = False
        self.state = defaultdict(dict)
        for child in self.children.values():
            self.state.update(child.state)
        self._bind_children([g for c in self.children.values() for g in c.param_groups])

        if verbose:
            print_fn(
                f"optimizer routing (preset {preset!r}, {PRESETS[preset].description}):\n"
                + self.routing_table()
            )

    def _bind_children(self, groups: list[dict]) -> None:
        """Point every child at its slice of `groups` and at the shared state dict."""
        self.param_groups = groups
        offset = 0
        for child in self.children.values():
            count = len(child.param_groups)
            child.param_groups = groups[offset : offset + count]
            child.state = self.state
            offset += count

    def add_param_group(self, param_group: dict) -> None:
        if getattr(self, "_building", False):
            return super().add_param_group(param_group)
        raise NotImplementedError(
            "RoutedOptimizer routes parameters at construction; build a new one instead"
        )

    def routing_rows(self) -> list[dict]:
        rows = []
        for name, child in self.children.items():
            for g in child.param_groups:
                rows.append(
                    {
                        "bucket": g["bucket"],
                        "optimizer": name,
                        "tensors": len(g["params"]),
                        "numel": sum(p.numel() for p in g["params"]),
                        "lr": g["lr"],
                        "num_heads": g.get("num_heads"),
                        "head_split_dim": g.get("head_split_dim"),
                    }
                )
        return rows

    def routing_table(self) -> str:
        return format_routing_table(self.routing_rows())

    def optimizer_of(self, name: str) -> str:
        """Which child ("pion", "muon", "adamw") owns the parameter called `name`."""
        for route in self.routes:
            if route.name == name:
                return route.rule.target
        raise KeyError(name)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for child in self.children.values():
            child.step()
        return loss

    def load_state_dict(self, state_dict: dict) -> None:
        check_momentum_convention(state_dict)
        super().load_state_dict(state_dict)
        self._bind_children(self.param_groups)
