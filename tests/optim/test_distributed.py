"""Distributed step on CPU with gloo and 2 processes: same result as one process.

DDP-style: every rank holds the same gradients, each orthogonalises only its share (balanced by
cost) and the results are all-gathered. FSDP2-style: parameters are DTensors sharded on dim 0
(also unevenly), and the update must be the orthogonalisation of the full matrix, not of a shard.
"""

from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from vla.optim import Muon, Pion
from vla.optim.distributed import assign_owners, ns_cost

SHAPES = [(64, 96), (96, 64), (32, 32), (128, 48), (17, 40), (64, 96)]
WORLD = 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _make(shapes, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(*s, generator=gen) for s in shapes]


def _grads(step, shapes):
    return _make(shapes, seed=100 + step)


def _reference(factory, steps):
    params = [torch.nn.Parameter(t) for t in _make(SHAPES)]
    opt = factory(params, distributed=False)
    for step in range(steps):
        for p, g in zip(params, _grads(step, SHAPES)):
            p.grad = g
        opt.step()
    return [p.detach() for p in params]


FACTORIES = {
    "pion_kp0": lambda ps, **kw: Pion(ps, lr=0.1, promotion_steps=0, **kw),
    "pion_kp3": lambda ps, **kw: Pion(ps, lr=0.1, promotion_steps=3, **kw),
    "muon": lambda ps, **kw: Muon(ps, lr=0.1, **kw),
    "pion_heads": lambda ps, **kw: Pion(
        [{"params": ps[:2], "num_heads": 4}, {"params": ps[2:]}], lr=0.1, promotion_steps=2, **kw
    ),
}


def _worker(rank, port, out_dir, mode):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=WORLD)
    try:
        report = {}
        for name, factory in FACTORIES.items():
            expected = _reference(factory, steps=2)
            if mode == "ddp":
                params = [torch.nn.Parameter(t) for t in _make(SHAPES)]
                opt = factory(params)
                for step in range(2):
                    for p, g in zip(params, _grads(step, SHAPES)):
                        p.grad = g
                    opt.step()
                got = [p.detach() for p in params]
                report[name] = {
                    "mapped_here": opt.step_stats["mapped_here"],
                    "matrices": opt.step_stats["matrices"],
                }
            else:
                from torch.distributed.device_mesh import init_device_mesh
                from torch.distributed.tensor import Shard, distribute_tensor

                mesh = init_device_mesh("cpu", (WORLD,))
                params = [torch.nn.Parameter(distribute_tensor(t, mesh, [Shard(0)])) for t in _make(SHAPES)]
                # distributed=False: DTensors alone must already give full-matrix updates
                opt = factory(params, distributed=(name != "muon"))
                for step in range(2):
                    for p, g in zip(params, _grads(step, SHAPES)):
                        p.grad = distribute_tensor(g, mesh, [Shard(0)])
                    opt.step()
                got = [p.detach().full_tensor() for p in params]
                report[name] = {"local_rows": params[4].to_local().shape[0]}
            report[name]["max_diff"] = max((a - b).abs().max().item() for a, b in zip(got, expected))
        torch.save(report, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def _run(mode, tmp_path):
    mp.start_processes(_worker, args=(_free_port(), str(tmp_path), mode), nprocs=WORLD, start_method="spawn")
    return [torch.load(tmp_path / f"rank{r}.pt") for r in range(WORLD)]


def test_assign_owners_balances_cost():
    costs = [ns_cost(1, *s) for s in [(896, 896)] * 9 + [(1792, 896), (896, 6272)]]
    owners = assign_owners(costs, 2)
    loads = [sum(c for c, o in zip(costs, owners) if o == r) for r in range(2)]
    assert max(loads) / min(loads) < 1.15
    assert assign_owners(costs, 1) == [0] * len(costs)


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed unavailable")
def test_ddp_sharded_orthogonalisation_matches_single_process(tmp_path):
    reports = _run("ddp", tmp_path)
    for name in FACTORIES:
        for rank_report in reports:
            assert rank_report[name]["max_diff"] < 1e-5, (name, rank_report[name])
        mapped = [r[name]["mapped_here"] for r in reports]
        assert sum(mapped) == len(SHAPES) and min(mapped) > 0  # work really was split


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed unavailable")
def test_dtensor_params_are_orthogonalised_as_full_matrices(tmp_path):
    reports = _run("dtensor", tmp_path)
    assert sorted(r["pion_kp0"]["local_rows"] for r in reports) == [
        8,
        9,
    ]  # the 17-row matrix is sharded unevenly
    for name in FACTORIES:
        for rank_report in reports:
            assert rank_report[name]["max_diff"] < 1e-5, (name, rank_report[name])
