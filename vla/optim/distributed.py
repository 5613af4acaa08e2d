"""Splitting orthogonalisation work across data-parallel ranks, and full-matrix views of DTensors.

DDP: every rank holds the same averaged gradients, so running Newton–Schulz for every matrix on every
rank is W-fold redundant. Instead each matrix gets one owner (greedy longest-processing-time on the
NS cost 4m²n + 2m³ per step), owners compute their share, and one all-gather of bf16 buffers hands
every rank every result. Assignment depends only on shapes, so all ranks agree without talking.

FSDP2 / DTensor: a shard of a matrix is not a matrix we may orthogonalise (NS of row blocks is not
NS of the whole). `full_matrix` gathers the logical tensor before NS and `local_part` cuts this rank's
shard out of the (replicated) result again.
"""

from __future__ import annotations

import heapq

import torch
import torch.distributed as dist

try:  # DTensor is only needed when the caller uses FSDP2; keep import failures harmless
    from torch.distributed.tensor import DTensor, distribute_tensor
except ImportError:  # pragma: no cover - torch builds without distributed support
    DTensor = None
    distribute_tensor = None


def is_dtensor(t: torch.Tensor) -> bool:
    return DTensor is not None and isinstance(t, DTensor)


def full_matrix(t: torch.Tensor) -> torch.Tensor:
    """The whole logical tensor: DTensors are gathered, plain tensors returned as they are."""
    return t.full_tensor() if is_dtensor(t) else t


def local_part(full: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """`full` laid out like `like` (a DTensor parameter): every rank keeps only its own shard.

    All ranks hold the same `full`, so `src_data_rank=None` lets each one slice locally without
    any communication.
    """
    if not is_dtensor(like):
        return full
    return distribute_tensor(full, like.device_mesh, like.placements, src_data_rank=None)


def ns_cost(batch: int, rows: int, cols: int) -> float:
    """Relative FLOPs of one Newton–Schulz step on `batch` matrices of rows×cols."""
    m, n = min(rows, cols), max(rows, cols)
    return batch * (4.0 * m * m * n + 2.0 * m**3)


def assign_owners(costs: list[float], world_size: int) -> list[int]:
    """Owner rank per item, balancing total cost (largest first onto the least-loaded rank)."""
    owners = [0] * len(costs)
    loads = [(0.0, rank) for rank in range(world_size)]
    heapq.heapify(loads)
    for index in sorted(range(len(costs)), key=lambda i: (-costs[i], i)):
        load, rank = heapq.heappop(loads)
        owners[index] = rank
        heapq.heappush(loads, (load + costs[index], rank))
    return owners


def world(process_group=None) -> tuple[int, int]:
    """(rank, world_size), (0, 1) when torch.distributed is not initialised."""
    if not (dist.is_available() and dist.is_initialized()):
        return 0, 1
    return dist.get_rank(process_group), dist.get_world_size(process_group)


def share_results(
    results: dict[int, torch.Tensor],
    numels: list[int],
    owners: list[int],
    process_group=None,
    dtype: torch.dtype = torch.bfloat16,
    device: torch.device | str = "cpu",
) -> list[torch.Tensor]:
    """All-gather every item's flat result from its owner; returns flat tensors for all items.

    `results` holds this rank's own items (index → tensor). Each rank packs its items in index order
    into one buffer padded to the longest rank's size, so a single collective moves everything.
    """
    rank, world_size = world(process_group)
    per_rank = [[i for i in range(len(numels)) if owners[i] == r] for r in range(world_size)]
    sizes = [sum(numels[i] for i in items) for items in per_rank]
    width = max(max(sizes), 1)
    send = torch.zeros(width, dtype=dtype, device=device)
    offset = 0
    for i in per_rank[rank]:
        send[offset : offset + numels[i]] = results[i].reshape(-1).to(dtype)
        offset += numels[i]
    gathered = torch.empty(world_size * width, dtype=dtype, device=device)
    if dist.get_backend(process_group) == "gloo":  # gloo lacks the single-buffer collective
        dist.all_gather(list(gathered.chunk(world_size)), send, group=process_group)
    else:
        dist.all_gather_into_tensor(gathered, send, group=process_group)
    out: list[torch.Tensor] = [torch.empty(0)] * len(numels)
    for r, items in enumerate(per_rank):
        offset = r * width
        for i in items:
            out[i] = gathered[offset : offset + numels[i]]
            offset += numels[i]
    return out


def check_grads_consistent(present: list[bool], device, process_group=None) -> None:
    """Raise if some ranks have a gradient for a parameter and others do not (it would hang)."""
    _, world_size = world(process_group)
    counts = torch.tensor([int(p) for p in present], dtype=torch.int32, device=device)
    dist.all_reduce(counts, group=process_group)
    bad = [i for i, c in enumerate(counts.tolist()) if 0 < c < world_size]
    if bad:
        raise RuntimeError(
            f"parameters {bad[:8]} have a gradient on some ranks only; distributed orthogonalisation "
            "needs the same set of gradients on every rank (set missing grads to zeros)"
        )
