"""Process group, device and model wrapping for one process or `torchrun` (DDP or FSDP2).

The model API is `compute_loss(inputs)`, not `forward`; DDP and FSDP only hook `forward`, so the trainer
runs the model through `LossModule`, whose forward is the model's `compute_loss`.

DDP: gradients are averaged by DDP; the Pion/Muon optimizers see torch.distributed and split the
Newton–Schulz work across ranks (vla/optim/distributed.py). FSDP2: `fully_shard` on every sub-module with at
least `fsdp_min_params` parameters and then on the root; parameters become DTensors, which the optimizers
gather to full matrices before orthogonalising.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from vla.train.config import DistConfig


@dataclass
class Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    strategy: str = "none"  # none | ddp | fsdp

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1


def resolve_device(requested: str, local_rank: int = 0) -> torch.device:
    if requested == "auto":
        return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    device = torch.device(requested)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={requested!r} but CUDA is not available; use device=cpu or auto")
    if device.type == "cuda" and device.index is None:
        device = torch.device(f"cuda:{local_rank}")
    return device


def setup(cfg: DistConfig, device: str) -> Dist:
    """Join the torchrun process group when launched by torchrun (WORLD_SIZE > 1); else one process."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device, local_rank)
    if world_size == 1:
        if cfg.strategy == "fsdp":
            raise ValueError("distributed.strategy=fsdp needs torchrun with at least 2 processes")
        return Dist(device=dev)
    if not dist.is_initialized():
        backend = cfg.backend or ("nccl" if dev.type == "cuda" else "gloo")
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        dist.init_process_group(backend=backend)
    strategy = "fsdp" if cfg.strategy == "fsdp" else "ddp"
    return Dist(rank, world_size, local_rank, dev, strategy)


def teardown(d: Dist) -> None:
    if d.active and dist.is_initialized():
        dist.destroy_process_group()


class LossModule(nn.Module):
    """forward(inputs) = model.compute_loss(inputs), so DDP/FSDP hooks fire."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, inputs):
        return self.model.compute_loss(inputs)


def wrap(model: nn.Module, d: Dist, cfg: DistConfig) -> nn.Module:
    """The module the training step calls: LossModule, inside DDP or FSDP2 when distributed."""
    module = LossModule(model)
    if d.strategy == "ddp":
        from torch.nn.parallel import DistributedDataParallel as DDP

        ids = [d.device.index] if d.device.type == "cuda" else None
        return DDP(module, device_ids=ids, find_unused_parameters=False)
    if d.strategy == "fsdp":
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import fully_shard

        mesh = init_device_mesh(d.device.type, (d.world_size,))
        for block in fsdp_units(model, cfg.fsdp_min_params):
            fully_shard(block, mesh=mesh)
        fully_shard(module, mesh=mesh)
        return module
    return module


def fsdp_units(model: nn.Module, min_params: int) -> list[nn.Module]:
    """The repeated blocks (items of every nn.ModuleList) with at least `min_params` parameters, deepest first."""
    units = []
    for module in model.modules():
        if isinstance(module, nn.ModuleList):
            units.extend(b for b in module if sum(p.numel() for p in b.parameters()) >= min_params)
    return units[::-1]


def mean_across(value: torch.Tensor, d: Dist) -> torch.Tensor:
    """Average of a tensor over ranks (identity in one process)."""
    if not d.active:
        return value
    out = value.detach().clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out / d.world_size


def barrier(d: Dist) -> None:
    if d.active:
        dist.barrier()


def broadcast_object(obj, d: Dist):
    if not d.active:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]
