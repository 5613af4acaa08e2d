"""Names for the parameters lerobot hands an optimizer config.

lerobot's `make_optimizer_and_scheduler` calls `cfg.optimizer.build(params)` with

- `policy.parameters()` when `use_policy_training_preset=false` (the only way to pick another optimizer):
  bare tensors, no names;
- `policy.get_optim_params()` otherwise: bare tensors, or param-group dicts (ACT's backbone group);
- a `{name: parameter}` dict for name-aware optimizers (XVLA).

Routing presets match parameter *names*, so when none are given the owner is looked up: the one live
`nn.Module` whose parameters include every given tensor and which has the fewest parameters (the policy
itself, not a wrapper around it; among modules with the same parameters, the outermost). Names are that
module's `named_parameters()` names, so they are the names in the policy's `model.safetensors`.
"""

from __future__ import annotations

import gc
import warnings
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import torch
from torch import nn


class NamedParameters:
    """The `named_parameters()` / `named_modules()` view of a parameter subset that `RoutedOptimizer` routes."""

    def __init__(self, named: list[tuple[str, torch.Tensor]], owner: nn.Module | None = None) -> None:
        self.named, self.owner = named, owner

    def named_parameters(self) -> Iterator[tuple[str, torch.Tensor]]:
        return iter(self.named)

    def named_modules(self) -> Iterator[tuple[str, nn.Module]]:
        return self.owner.named_modules() if self.owner is not None else iter(())


def _flatten(params: Any) -> list[torch.Tensor]:
    tensors: list[torch.Tensor] = []
    for item in params:
        if isinstance(item, Mapping):
            group = item["params"]
            tensors.extend([group] if isinstance(group, torch.Tensor) else group)
        elif isinstance(item, torch.Tensor):
            tensors.append(item)
        else:
            raise TypeError(f"expected parameters or param-group dicts, got {type(item).__name__}")
    return tensors


def find_owner(tensors: Iterable[torch.Tensor]) -> nn.Module | None:
    """The smallest live module holding all `tensors` (outermost among equals); None if there is none."""
    wanted = {id(t) for t in tensors}
    if not wanted:
        return None
    best: list[tuple[int, nn.Module]] = []
    with warnings.catch_warnings():  # type(), not isinstance(): lazy module proxies warn on __class__ access
        warnings.simplefilter("ignore")
        modules = [o for o in gc.get_objects() if issubclass(type(o), nn.Module)]
    for obj in modules:
        ids = {id(p) for p in obj.parameters()}
        if wanted <= ids:
            best.append((len(ids), obj))
    if not best:
        return None
    fewest = min(n for n, _ in best)
    tied = [m for n, m in best if n == fewest]
    outer = [m for m in tied if not any(o is not m and any(x is m for x in o.modules()) for o in tied)]
    return (outer or tied)[0]


def named_parameters(params: Any) -> NamedParameters:
    """Names for `params` as lerobot passes them (see the module docstring); raises if they cannot be found."""
    if isinstance(params, Mapping):
        if not all(isinstance(v, torch.Tensor) for v in params.values()):
            raise TypeError(
                "a dict of parameters must map names to tensors (multi-optimizer dicts such as SAC's are not supported)"
            )
        return NamedParameters(list(params.items()))
    tensors = _flatten(params)
    owner = find_owner(tensors)
    if owner is None:
        raise ValueError(
            f"cannot name the {len(tensors)} parameters given to the optimizer: no live nn.Module holds all of "
            "them; pass dict(model.named_parameters()) instead"
        )
    given = {id(t) for t in tensors}
    named = [(n, p) for n, p in owner.named_parameters() if id(p) in given]
    return NamedParameters(named, owner)
