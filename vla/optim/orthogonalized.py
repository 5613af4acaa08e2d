"""The step shared by Muon, Pion and LowRankMuon: momentum, a spectral map, a shape-scaled update.

For every matrix parameter W with gradient g (conv and other ≥3-D weights viewed as (out, −1)):

    buf ← μ·buf + (1 − μ)·g                       EMA momentum, kept in the optimizer state
    u   ← (1 − μ)·g + μ·buf  if nesterov else buf
    O   ← spectral_map(u)                         Newton–Schulz filter, SVD, ... (the subclass)
    W   ← W·(1 − lr·wd) − lr·k(rows, cols)·O      decoupled decay, then the lr-scale convention k

In per-head mode (`num_heads` set on a param group) u is cut into heads first (see `heads.py`)
and normalisation, spectral map and k all act per head. The spectral maps of a whole step are
computed together: same-shape matrices can be stacked into one batched call, and under
torch.distributed each rank computes only its share and all-gathers the rest (`distributed.py`).
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass

import torch
from torch.optim import Optimizer

from vla.optim.distributed import (
    assign_owners,
    check_grads_consistent,
    full_matrix,
    local_part,
    ns_cost,
    share_results,
    world,
)
from vla.optim.heads import HeadSplit, merge_heads, split_heads
from vla.optim.lr_scale import check_lr_scale, lr_scale_factor

NS_DTYPES = {"bfloat16": torch.bfloat16, "float32": torch.float32}  # Newton–Schulz arithmetic
NS_DTYPE_CHOICES = (*NS_DTYPES, "auto")  # auto: bf16 on CUDA; on CPU whichever measures faster here


def ns_compute_dtype(name: str, device: torch.device) -> torch.dtype:
    """The Newton–Schulz dtype for `ns_dtype` = name on this device ("auto" is resolved by measurement)."""
    return NS_DTYPES[name] if name != "auto" else _fastest_ns_dtype(device.type)


@functools.cache
def _fastest_ns_dtype(device_type: str) -> torch.dtype:
    """CUDA: bf16. CPU: time a few Newton–Schulz-sized matmul chains in bf16 and float32 once per process.

    CPUs differ: with native bf16 matmul it can win; without, bf16 is 40–90× slower (docs/benchmarks.md)."""
    if device_type != "cpu":
        return torch.bfloat16
    x = torch.randn(8, 128, 128, generator=torch.Generator().manual_seed(0))
    best = {}
    for dtype in (torch.float32, torch.bfloat16):
        a = x.to(dtype)
        times = []
        for _ in range(4):
            t0 = time.perf_counter()
            for _ in range(3):
                a = 0.5 * (a @ a.mT) @ a / (a.norm() + 1e-7)
            times.append(time.perf_counter() - t0)
        best[dtype] = min(times[1:])
    return min(best, key=best.get)


MOMENTUM_CONVENTION = "ema"  # buf.lerp_(g, 1 − μ); SGD-form checkpoints differ by (1 − μ) and are refused


def check_momentum_convention(state_dict: dict) -> None:
    """Refuse a checkpoint whose momentum buffers use another convention (EMA vs SGD differ by 1 − μ)."""
    for group in state_dict["param_groups"]:
        convention = group.get("momentum_convention", MOMENTUM_CONVENTION)
        if convention != MOMENTUM_CONVENTION:
            raise ValueError(f"checkpoint momentum_convention {convention!r} != {MOMENTUM_CONVENTION!r}")


@dataclass
class _Work:
    """One parameter's input to the spectral map for this step."""

    param: torch.Tensor
    group: dict
    batch: torch.Tensor  # (B, rows, cols): B = 1 whole-matrix, B = num_heads per-head
    split: HeadSplit | None
    scale: float


class OrthogonalizedOptimizer(Optimizer):
    """Base class; subclasses implement `_spectral_map` and `_map_key`.

    Instance-level (not per group) options: `stack_same_shape` (None = on: same-shape matrices go through
    one batched call; on CPU this halved Muon's step for the CPU-scale VLA-Adapter, docs/benchmarks.md),
    `distributed` (None: on when torch.distributed is initialised with
    more than one rank) and `process_group`.
    """

    def __init__(
        self,
        params,
        defaults: dict,
        *,
        stack_same_shape: bool | None = None,
        distributed: bool | None = None,
        process_group=None,
    ) -> None:
        defaults = {
            "momentum_convention": MOMENTUM_CONVENTION,
            "num_heads": None,
            "head_split_dim": 0,
            **defaults,
        }
        self._check_options(defaults)
        self.stack_same_shape = stack_same_shape
        self.distributed = distributed
        self.process_group = process_group
        self.step_stats: dict[str, int] = {}
        super().__init__(params, defaults)

    # ---- configuration ---------------------------------------------------------------------
    def _check_options(self, options: dict) -> None:
        """Raise ValueError for out-of-range hyper-parameters (subclasses extend this)."""
        if not options["lr"] >= 0.0:
            raise ValueError(f"Invalid learning rate: {options['lr']}")
        if not 0.0 <= options["momentum"] < 1.0:
            raise ValueError(f"Invalid momentum: {options['momentum']} (need 0 <= momentum < 1)")
        if not options["weight_decay"] >= 0.0:
            raise ValueError(f"Invalid weight_decay: {options['weight_decay']}")
        if "ns_dtype" in options and options["ns_dtype"] not in NS_DTYPE_CHOICES:
            raise ValueError(f"ns_dtype must be one of {list(NS_DTYPE_CHOICES)}, got {options['ns_dtype']!r}")
        if not options["eps"] >= 0.0:
            raise ValueError(f"Invalid eps: {options['eps']}")
        if not options["scale_factor"] > 0.0:
            raise ValueError(f"Invalid scale_factor: {options['scale_factor']}")
        check_lr_scale(options["lr_scale"])
        if options["num_heads"] is not None:
            HeadSplit(int(options["num_heads"]), int(options["head_split_dim"]))
        if options["momentum_convention"] != MOMENTUM_CONVENTION:
            raise ValueError(
                f"momentum_convention {options['momentum_convention']!r} is not supported; this optimizer "
                f"keeps an {MOMENTUM_CONVENTION!r} buffer (checkpoints of the SGD form differ by 1 − μ)"
            )

    def add_param_group(self, param_group: dict) -> None:
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        try:
            self._check_group(group)
        except ValueError:
            self.param_groups.pop()  # leave the optimizer as it was
            raise
        for p in group["params"]:
            # Pre-populated, so state_dict() has the same keys on every rank from step 0.
            self.state[p].setdefault(
                "momentum_buffer", torch.zeros_like(p, memory_format=torch.preserve_format)
            )

    def _check_group(self, group: dict) -> None:
        self._check_options(group)
        split = self._head_split(group)
        for p in group["params"]:
            if p.ndim < 2:
                raise ValueError(
                    f"{type(self).__name__} only takes matrices (ndim >= 2); got a parameter of shape "
                    f"{tuple(p.shape)}. Route 0/1-D parameters to AdamW."
                )
            if split is not None:
                split.head_shape(p.shape[0], math.prod(p.shape[1:]))  # raises if heads do not divide the axis

    def load_state_dict(self, state_dict: dict) -> None:
        check_momentum_convention(state_dict)
        super().load_state_dict(state_dict)

    @staticmethod
    def _head_split(group: dict) -> HeadSplit | None:
        if group.get("num_heads") is None:
            return None
        return HeadSplit(int(group["num_heads"]), int(group["head_split_dim"]))

    # ---- subclass interface ----------------------------------------------------------------
    def _spectral_map(self, batch: torch.Tensor, group: dict) -> torch.Tensor:
        """(B, rows, cols) momentum → (B, rows, cols) orthogonalised update, in bf16 or float32."""
        raise NotImplementedError

    def _map_key(self, group: dict) -> tuple:
        """Groups whose `_spectral_map` is identical return equal keys (so they can be stacked)."""
        raise NotImplementedError

    # ---- the step --------------------------------------------------------------------------
    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        rank, world_size = world(self.process_group) if self._distributed_active() else (0, 1)
        if world_size > 1:
            present = [p.grad is not None for g in self.param_groups for p in g["params"]]
            device = next(p for g in self.param_groups for p in g["params"]).device
            check_grads_consistent(present, device, self.process_group)

        work = [
            self._momentum_input(p, g) for g in self.param_groups for p in g["params"] if p.grad is not None
        ]
        updates = self._spectral_maps(work, rank, world_size)
        for item, update in zip(work, updates):
            p, group = item.param, item.group
            if group["weight_decay"] != 0.0:
                p.mul_(1.0 - group["lr"] * group["weight_decay"])
            p.add_(update, alpha=-group["lr"] * item.scale)
        return loss

    def _distributed_active(self) -> bool:
        if self.distributed is False:
            return False
        _, world_size = world(self.process_group)
        if self.distributed and world_size == 1 and not torch.distributed.is_initialized():
            raise RuntimeError("distributed=True but torch.distributed is not initialised")
        return world_size > 1

    def _momentum_input(self, p: torch.Tensor, group: dict) -> _Work:
        grad = p.grad
        if grad.is_sparse:
            raise RuntimeError(f"{type(self).__name__} does not support sparse gradients")
        momentum = group["momentum"]
        buf = self.state[p]["momentum_buffer"]
        buf.lerp_(grad, 1.0 - momentum)
        u = grad.lerp(buf, momentum) if group["nesterov"] else buf
        matrix = full_matrix(u)  # FSDP2/DTensor: the whole logical matrix, never a shard
        matrix = matrix.reshape(matrix.shape[0], -1)
        split = self._head_split(group)
        batch = split_heads(matrix, split) if split is not None else matrix.unsqueeze(0)
        scale = lr_scale_factor(group["lr_scale"], batch.shape[-2], batch.shape[-1], group["scale_factor"])
        return _Work(p, group, batch, split, scale)

    def _exchange_dtype(self) -> torch.dtype:
        """dtype of the all-gathered results: bf16 unless some group computes its map in float32."""
        wide = any(g.get("ns_dtype", "bfloat16") in ("float32", "auto") for g in self.param_groups)
        return torch.float32 if wide else torch.bfloat16

    def _spectral_maps(self, work: list[_Work], rank: int, world_size: int) -> list[torch.Tensor]:
        """Orthogonalised updates for all work items, shaped like their parameters."""
        if not work:  # no gradients anywhere (consistent across ranks, checked in `step`)
            return []
        owners = assign_owners([ns_cost(*w.batch.shape) for w in work], world_size)
        mine = [i for i in range(len(work)) if owners[i] == rank]
        stack = self.stack_same_shape is not False

        buckets: dict[tuple, list[int]] = {}
        for i in mine:
            key = (
                (self._map_key(work[i].group), tuple(work[i].batch.shape[1:]), work[i].batch.dtype)
                if stack
                else (i,)
            )
            buckets.setdefault(key, []).append(i)
        results: dict[int, torch.Tensor] = {}
        for indices in buckets.values():
            inputs = [work[i].batch for i in indices]
            outputs = self._spectral_map(
                torch.cat(inputs) if len(inputs) > 1 else inputs[0], work[indices[0]].group
            )
            for i, out in zip(indices, outputs.split([x.shape[0] for x in inputs])):
                results[i] = out
        self.step_stats = {"matrices": len(work), "mapped_here": len(mine), "batched_calls": len(buckets)}

        if world_size > 1:
            flat = share_results(
                results,
                [w.batch.numel() for w in work],
                owners,
                self.process_group,
                dtype=self._exchange_dtype(),
                device=work[0].batch.device,
            )
            results = {i: flat[i].view(work[i].batch.shape) for i in range(len(work))}

        updates = []
        for i, w in enumerate(work):
            out = results[i]
            matrix = merge_heads(out, w.split) if w.split is not None else out[0]
            full_update = matrix.reshape(w.param.shape).to(w.param.dtype)  # DTensor: global shape
            updates.append(local_part(full_update, w.param))
        return updates
