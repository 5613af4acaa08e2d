"""Optimizer step time on real-size parameter sets: AdamW, torch.optim.Muon, our Muon, Pion (whole, per-head,
low-rank fast path), in one run, plus NS throughput vs this machine's matmul rate and optimizer state bytes.

    python benchmarks/optim_step_time.py --sets action_head,qwen_layer --reps 2 --md docs/benchmarks_optim_run.md

Parameter sets (matrices only; 0/1-D parameters go to AdamW in every recipe and are left out):
  action_head  VLA-Adapter Pro policy head: 24 blocks × (q, k/v self, k/v adapter, k/v task, o_proj, FFN)
               896×896 + film_gen 1792×896, plus fc1 896×6272 (≈ 217.9M parameters)
  qwen_layer   one Qwen2.5-0.5B decoder layer: q/o 896×896 (14 heads), k/v 128×896 (2 KV heads),
               gate/up 4864×896, down 896×4864

Gradients are low-rank plus noise (rank-4 signal with σ ∝ 1, 0.3, 0.2, 0.1; noise RMS 1% of the signal's),
the same for every optimizer, so Pion's k_p = 0 filter passes the top direction and the fast-path/NS
comparison is not trivially 0 = 0. On CPUs without native bf16 matmul (this one: no AVX512-BF16) the bf16
Newton–Schulz paths are 40–90× slower than fp32; the fp32 variants (`ns_dtype="float32"`) are timed too.
Each optimizer gets `--warmup` untimed steps and `--reps` timed steps; the median is reported.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import math
import platform
import statistics
import subprocess
import time
from pathlib import Path

import torch

from vla.optim import Muon, Pion
from vla.optim.distributed import ns_cost


def action_head_set():
    shapes, heads = [], []
    for _ in range(24):
        for _name in ("q", "k_self", "v_self", "k_adapter", "v_adapter", "k_task", "v_task"):
            shapes.append((896, 896))
            heads.append((8, 0))
        shapes.append((896, 896))  # o_proj
        heads.append((8, 1))
        shapes.append((896, 896))  # FFN
        heads.append(None)
        shapes.append((1792, 896))  # film_gen (kept for checkpoint compatibility)
        heads.append(None)
    shapes.append((896, 6272))  # fc1: 7·896 → 896
    heads.append(None)
    return shapes, heads


def action_head_block_set():
    """One of the 24 blocks of `action_head_set` (for the slow bf16 Newton–Schulz paths on CPU)."""
    shapes, heads = action_head_set()
    return shapes[:10], heads[:10]


def qwen_layer_set():
    shapes = [(896, 896), (128, 896), (128, 896), (896, 896), (4864, 896), (4864, 896), (896, 4864)]
    heads = [(14, 0), (2, 0), (2, 0), (14, 1), None, None, None]
    return shapes, heads


SETS = {
    "action_head": action_head_set,
    "action_head_block": action_head_block_set,
    "qwen_layer": qwen_layer_set,
}


def make_grads(shapes, seed=0):
    gen = torch.Generator().manual_seed(seed)
    grads = []
    for rows, cols in shapes:
        # rank-4 signal with one dominant direction (normalised σ₁ ≈ 0.94, so Pion k_p = 0 passes it)
        left = torch.randn(rows, 4, generator=gen) / math.sqrt(rows)
        right = torch.randn(4, cols, generator=gen) / math.sqrt(cols)
        signal = left @ torch.diag(torch.tensor([1.0, 0.3, 0.2, 0.1])) @ right
        grads.append(signal + 0.01 * signal.std() * torch.randn(rows, cols, generator=gen))
    return grads


def per_head_groups(params, heads):
    groups: dict = {}
    for p, h in zip(params, heads):
        groups.setdefault(h, []).append(p)
    return [
        {"params": ps, **({} if h is None else {"num_heads": h[0], "head_split_dim": h[1]})}
        for h, ps in groups.items()
    ]


def optimizers(heads):
    return {
        "AdamW (fused)": lambda ps: torch.optim.AdamW(ps, lr=1e-4, fused=True),
        "torch.optim.Muon": lambda ps: torch.optim.Muon(
            ps, lr=1e-4, weight_decay=0.01, adjust_lr_fn="original"
        ),
        "Muon (ours)": lambda ps: Muon(ps, lr=1e-4, lr_scale="original"),
        "Pion k_p=0 NS": lambda ps: Pion(ps, lr=1e-4, promotion_steps=0, low_rank=False),
        "Pion k_p=0 per-head NS": lambda ps: Pion(per_head_groups(ps, heads), lr=1e-4, low_rank=False),
        "Muon (ours) fp32 NS": lambda ps: Muon(ps, lr=1e-4, lr_scale="original", ns_dtype="float32"),
        "Pion k_p=0 fp32 NS": lambda ps: Pion(
            ps, lr=1e-4, promotion_steps=0, low_rank=False, ns_dtype="float32"
        ),
        "Pion k_p=0 low-rank": lambda ps: Pion(ps, lr=1e-4, promotion_steps=0, low_rank=True),
        "Pion k_p=2 low-rank": lambda ps: Pion(ps, lr=1e-4, promotion_steps=2, low_rank=True),
    }


def state_bytes(opt) -> int:
    return sum(
        t.numel() * t.element_size() for s in opt.state.values() for t in s.values() if torch.is_tensor(t)
    )


def time_optimizer(factory, shapes, grads, warmup, reps):
    """Median step time; the update is read off the very first step (params and state start at zero,
    so the parameters after it are exactly −lr·scale·O, with no weight-decay term)."""
    params = [torch.nn.Parameter(torch.zeros(s)) for s in shapes]
    for p, g in zip(params, grads):
        p.grad = g
    opt = factory(params)
    update, times = None, []
    for i in range(warmup + reps):
        start = time.perf_counter()
        opt.step()
        elapsed = time.perf_counter() - start
        if i >= warmup:
            times.append(elapsed)
        if update is None:
            update = [p.detach().clone() for p in params]
    result = statistics.median(times), times, state_bytes(opt), update
    del opt, params
    gc.collect()
    return result


def matmul_rate(dtype, n=896, reps=20) -> float:
    """FLOP/s of an n×n @ n×n matmul in `dtype` on this machine (median of reps)."""
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    for _ in range(3):
        a @ b
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * n**3 / statistics.median(times)


def rel_diff(a, b) -> float:
    num = math.sqrt(sum(float((x - y).float().pow(2).sum()) for x, y in zip(a, b)))
    den = math.sqrt(sum(float(y.float().pow(2).sum()) for y in b))
    return num / den if den > 0 else float("nan")


def machine() -> str:
    try:
        model = next(
            line.split(":", 1)[1].strip()
            for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines()
            if line.startswith("Model name")
        )
    except Exception:  # noqa: BLE001 - informational only
        model = platform.processor()
    return f"{model}, {torch.get_num_threads()} threads, torch {torch.__version__}, no GPU used"


def run_set(name, warmup, reps, only):
    shapes, heads = SETS[name]()
    grads = make_grads(shapes)
    numel = sum(r * c for r, c in shapes)
    ns_flops = 5 * sum(ns_cost(1, r, c) for r, c in shapes)
    rows, updates = [], {}
    for label, factory in optimizers(heads).items():
        if only and label not in only:
            continue
        median, times, nbytes, update = time_optimizer(factory, shapes, grads, warmup, reps)
        updates[label] = update
        rows.append((label, median, times, nbytes))
        print(
            f"  {name:12s} {label:26s} median {median:8.3f} s  runs {[round(t, 3) for t in times]}",
            flush=True,
        )
    return shapes, numel, ns_flops, rows, updates


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default="action_head,qwen_layer")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument(
        "--only", default="", help="comma-separated exact optimizer labels to run (default: all)"
    )
    parser.add_argument("--md", type=Path, default=None, help="write the markdown fragment here")
    args = parser.parse_args(argv)
    only = [o for o in args.only.split(",") if o]

    rate_bf16, rate_fp32 = matmul_rate(torch.bfloat16), matmul_rate(torch.float32)
    lines = [
        f"- date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC; machine: {machine()}",
        f"- matmul rate (896³, median of 20): bf16 {rate_bf16 / 1e9:.1f} GFLOP/s, fp32 {rate_fp32 / 1e9:.1f} GFLOP/s",
        f"- warmup {args.warmup} step(s), {args.reps} timed step(s) per optimizer, median reported",
        "",
    ]
    for name in args.sets.split(","):
        shapes, numel, ns_flops, rows, updates = run_set(name, args.warmup, args.reps, only)
        by_label = {label: median for label, median, _, _ in rows}
        lines += [
            f"### {name}: {len(shapes)} matrices, {numel / 1e6:.1f}M parameters, "
            f"5-step NS {ns_flops / 1e12:.2f} TFLOP (whole-matrix)",
            "",
            "| optimizer | median step (s) | timed steps (s) | state bytes | vs fused AdamW |",
            "|---|---|---|---|---|",
        ]
        adamw = by_label.get("AdamW (fused)")
        for label, median, times, nbytes in rows:
            ratio = f"{median / adamw:.1f}×" if adamw else "-"
            lines.append(
                f"| {label} | {median:.3f} | {', '.join(f'{t:.3f}' for t in times)} | "
                f"{nbytes / 2**20:.0f} MiB | {ratio} |"
            )
        lines.append("")
        derived = []
        if "Muon (ours)" in by_label and "torch.optim.Muon" in by_label:
            derived.append(
                f"our Muon / torch.optim.Muon step time: {by_label['Muon (ours)'] / by_label['torch.optim.Muon']:.3f}"
            )
        if "Pion k_p=0 NS" in by_label and "Muon (ours)" in by_label:
            derived.append(
                f"Pion NS / Muon (ours) step time: {by_label['Pion k_p=0 NS'] / by_label['Muon (ours)']:.3f}"
            )
        if "Pion k_p=0 NS" in by_label:
            derived.append(
                f"NS throughput of Pion NS path: {ns_flops / by_label['Pion k_p=0 NS'] / 1e9:.1f} GFLOP/s = "
                f"{ns_flops / by_label['Pion k_p=0 NS'] / rate_bf16:.0%} of the bf16 matmul rate"
            )
        if "Pion k_p=0 fp32 NS" in by_label and "Muon (ours) fp32 NS" in by_label:
            derived.append(
                f"Pion fp32 NS / Muon (ours) fp32 NS step time: "
                f"{by_label['Pion k_p=0 fp32 NS'] / by_label['Muon (ours) fp32 NS']:.3f}"
            )
        if "Pion k_p=0 fp32 NS" in by_label:
            derived.append(
                f"NS throughput of Pion fp32 NS path: {ns_flops / by_label['Pion k_p=0 fp32 NS'] / 1e9:.1f} GFLOP/s = "
                f"{ns_flops / by_label['Pion k_p=0 fp32 NS'] / rate_fp32:.0%} of the fp32 matmul rate"
            )
        for ns_label in ("Pion k_p=0 NS", "Pion k_p=0 fp32 NS"):
            if "Pion k_p=0 low-rank" in by_label and ns_label in by_label:
                derived.append(
                    f"Pion k_p=0 low-rank vs {ns_label}: {by_label[ns_label] / by_label['Pion k_p=0 low-rank']:.1f}× faster; "
                    f"relative update difference ‖fast − NS‖_F/‖NS‖_F = "
                    f"{rel_diff(updates['Pion k_p=0 low-rank'], updates[ns_label]):.4f}"
                )
        if "Muon (ours)" in updates and "torch.optim.Muon" in updates:
            derived.append(
                f"relative update difference our Muon vs torch.optim.Muon: "
                f"{rel_diff(updates['Muon (ours)'], updates['torch.optim.Muon']):.2e}"
            )
        lines += [f"- {d}" for d in derived] + [""]
    text = "\n".join(lines)
    print(text)
    if args.md:
        args.md.write_text(text + "\n")


if __name__ == "__main__":
    main()
