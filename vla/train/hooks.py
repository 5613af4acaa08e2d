"""What the trainer measures around an update: update norms and Pion zero updates per optimizer group,
spectral diagnostics per routing bucket, and periodic evaluation with a Wilson interval.

Update statistics need the parameters before the step; `UpdateProbe.before(...)` copies them (only on
log/spectral steps). A Pion/Muon update is W ← W·(1 − lr·wd) − lr·k·O, so the filtered update O is
exactly zero iff the new W equals W·(1 − lr·wd) computed the same way: that is how zero updates are
counted, with no access to the optimizer's internals.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import torch

from vla.optim.routing import route_parameters
from vla.optim.spectral import effective_rank, singular_values
from vla.stats import Z95, wilson_interval  # noqa: F401  (re-exported)


def _local(t: torch.Tensor) -> torch.Tensor:
    return t.to_local() if hasattr(t, "to_local") else t


def _full(t: torch.Tensor) -> torch.Tensor:
    return t.full_tensor() if hasattr(t, "full_tensor") else t


def _slug(text: str) -> str:
    slug = "".join(c if c.isalnum() else "_" for c in text).strip("_").lower()
    while "__" in slug:
        slug = slug.replace("__", "_")
    return slug


def group_label(optimizer_name: str, group: dict, index: int) -> str:
    return f"{optimizer_name}/{_slug(str(group.get('bucket', f'group{index}')))}"


def model_regions(model: torch.nn.Module) -> dict[int, str]:
    """{id(param): region} with the VLA regions of the routing presets (vision, language, action_head, ...).

    Diagnostics use it to split a group that spans several regions (AdamW everywhere) so that every arm
    reports gradient / update spectra per region, whatever the optimizer routing."""
    return {id(r.param): _slug(r.rule.bucket) for r in route_parameters(model.named_parameters(), "muon")}


def optimizer_groups(optimizer) -> list[tuple[str, str, dict]]:
    """(label, child optimizer name, param group) for a RoutedOptimizer or any torch optimizer."""
    out = []
    children = getattr(optimizer, "children", None)
    if isinstance(children, dict):
        for name, child in children.items():
            for i, g in enumerate(child.param_groups):
                out.append((group_label(name, g, i), name, g))
    else:
        for i, g in enumerate(optimizer.param_groups):
            out.append((group_label("opt", g, i), "opt", g))
    return out


class UpdateProbe:
    """Copies parameters before a step; afterwards yields per-group update norms and zero-update fractions."""

    def __init__(self, optimizer) -> None:
        self.groups = optimizer_groups(optimizer)
        self.before: dict[int, tuple[torch.Tensor, float, float]] | None = None

    def snapshot(self) -> None:
        self.before = {}
        for _, _, g in self.groups:
            for p in g["params"]:
                if p.grad is not None:
                    self.before[id(p)] = (
                        _local(p.detach()).clone(),
                        float(g["lr"]),
                        float(g["weight_decay"]),
                    )

    @torch.no_grad()
    def measure(self, keep_updates: bool = False) -> tuple[dict[str, float], dict[int, torch.Tensor]]:
        """({tag: value}, {id(param): update}) — updates only when keep_updates (for spectral ranks)."""
        if self.before is None:
            return {}, {}
        stats: dict[str, float] = {}
        updates: dict[int, torch.Tensor] = {}
        for label, name, g in self.groups:
            sq, zero, count = 0.0, 0, 0
            for p in g["params"]:
                if id(p) not in self.before:
                    continue
                old, lr, wd = self.before[id(p)]
                new = _local(p.detach())
                delta = new - old
                sq += float(delta.float().pow(2).sum())
                if name in ("pion", "muon") and p.ndim >= 2:
                    count += 1
                    zero += bool(torch.equal(new, old.mul(1.0 - lr * wd)))
                if keep_updates:
                    updates[id(p)] = delta
            stats[f"update_norm/{label}"] = math.sqrt(sq)
            if count:
                stats[f"zero_update_frac/{label}"] = zero / count
        self.before = None
        return stats, updates


@torch.no_grad()
def spectral_stats(
    optimizer, updates: dict[int, torch.Tensor], max_dim: int, regions: dict[int, str] | None = None
) -> dict[str, float]:
    """Mean effective rank of gradients and of updates per routing bucket (matrices only).

    A group whose matrices lie in several `regions` (model_regions) is reported per region instead, as
    `<optimizer>/<region>`: the AdamW baseline's single group becomes adamw/vision, adamw/action_head, ..."""
    regions = regions or {}
    acc: dict[str, list[float]] = defaultdict(list)
    for group_lbl, name, g in optimizer_groups(optimizer):
        mats = [p for p in g["params"] if p.ndim >= 2]
        split = len({regions.get(id(p)) for p in mats}) > 1 and all(id(p) in regions for p in mats)
        for p in mats:
            if max(p.shape[0], p[0].numel()) > max_dim:
                continue
            label = f"{name}/{regions[id(p)]}" if split else group_lbl
            if p.grad is not None:
                acc[f"spectral/{label}/grad_effective_rank"].append(
                    float(effective_rank(singular_values(_full(p.grad))))
                )
            if id(p) in updates and updates[id(p)].shape == p.shape:
                acc[f"spectral/{label}/update_effective_rank"].append(
                    float(effective_rank(singular_values(updates[id(p)])))
                )
    return {k: sum(v) / len(v) for k, v in acc.items()}


EvaluateFn = Callable[[Path, int], dict]
"""evaluate(checkpoint_export_dir, step) -> a summary with `successes` and `episodes` (or envs' summary dict
whose `overall` holds them). The CLI passes one built on the LIBERO harness; vla never imports envs."""


def eval_record(summary: dict) -> dict[str, float]:
    """success rate, Wilson 95% CI and episode count from an evaluation summary."""
    overall = summary.get("overall", summary)
    n, k = int(overall["episodes"]), int(overall["successes"])
    lo, hi = wilson_interval(k, n)
    return {
        "eval/success_rate": k / n if n else 0.0,
        "eval/ci95_low": lo,
        "eval/ci95_high": hi,
        "eval/episodes": float(n),
        "eval/successes": float(k),
    }
