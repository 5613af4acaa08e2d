"""Why Muon/Pion cost what they cost on the CPU-scale VLA-Adapter: Newton–Schulz FLOPs vs the model's FLOPs.

    .venv/bin/python benchmarks/ns_flops.py [--batch 32] [--input-size 128] [--threads 2]

Counts, for the matrices the Pion routing (`vla_adapter` preset) sends to Muon or Pion, the FLOPs of their
Newton–Schulz iterations (per iteration on an a x b matrix, a <= b: the Gram matrix X·Xᵀ and the product with X
cost 2·a²·b FLOPs each, the a x a polynomial 2·a³; Pion's low-rank fast path, when it applies, does less, so
this is an upper bound for its head), counts the forward + backward FLOPs of one training batch with
`torch.utils.flop_counter`, and measures this machine's batched fp32 matmul throughput at the dominant shape.
The predicted optimizer overhead is NS FLOPs / throughput; compare it with `benchmarks/train_step.py`'s
optimizer.step column. For one a x b matrix the ratio NS / (fwd+bwd) is about 5·a / T (T = tokens per batch), so
it shrinks with the batch and sequence length and grows with the width: it is a property of the model's scale.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from model_speed import cpu_flags  # noqa: E402
from train_step import setup_cell, setup_model  # noqa: E402


def ns_flops(shape: torch.Size, steps: int) -> int:
    rows = shape[0]
    cols = int(torch.Size(shape).numel()) // rows
    a, b = min(rows, cols), max(rows, cols)
    return steps * 2 * (2 * a * a * b + a**3)


def matmul_gflops(batch: int, n: int, reps: int = 20) -> float:
    x = torch.randn(batch, n, n)
    for _ in range(3):
        x @ x
    t0 = time.perf_counter()
    for _ in range(reps):
        x @ x
    return 2 * batch * n**3 * reps / (time.perf_counter() - t0) / 1e9


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--input-size", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from torch.utils.flop_counter import FlopCounterMode

    m = setup_model("vla_adapter", args.batch, args.input_size)
    cell = setup_cell("vla_adapter", "pion", m)
    opt, model = cell["opt"], cell["model"]
    total, shapes = 0, Counter()
    for name, child in opt.children.items():
        if name == "adamw":
            continue
        steps = child.defaults.get("ns_steps", 5)
        for group in child.param_groups:
            for p in group["params"]:
                total += ns_flops(p.shape, steps)
                shapes[(p.shape[0], p.numel() // p.shape[0])] += 1
    with FlopCounterMode(display=False) as counter:
        loss, _ = model.compute_loss(m["inputs"])
        loss.backward()
    fwd_bwd = counter.get_total_flops()
    dominant = max(shapes, key=lambda s: shapes[s] * s[0] * s[1])
    side = min(dominant)
    gflops = matmul_gflops(shapes[dominant], side)
    print(f"# cpu: {cpu_flags()}; torch {torch.__version__}; threads {args.threads}; batch {args.batch}; "
          f"frames {args.input_size}")  # fmt: skip
    print(f"matrices on Muon/Pion: {sum(shapes.values())}; shapes {dict(sorted(shapes.items()))}")
    print(f"Newton–Schulz FLOPs per step: {total / 1e9:.2f} G; forward+backward FLOPs: {fwd_bwd / 1e9:.2f} G; "
          f"ratio {total / fwd_bwd:.3f}")  # fmt: skip
    print(f"batched fp32 matmul ({shapes[dominant]} x {side}x{side}): {gflops:.0f} GFLOP/s -> predicted "
          f"Newton–Schulz time {1e3 * total / gflops / 1e9:.0f} ms per step")  # fmt: skip


if __name__ == "__main__":
    main()
