"""Training step of the CPU-scale policies with AdamW, Muon and Pion side by side (fp32, batch 32).

    flock /tmp/pion-heavy.lock .venv/bin/python benchmarks/train_step.py --json-out outputs/bench/train_step.json
    .venv/bin/python benchmarks/train_step.py --models vla_adapter --optims adamw pion --steps 3

Models: `configs/model/<name>_cpu.yaml` through vla.models.registry (random init). Optimizers: the values of
`configs/optim/{adamw,muon,pion}.yaml` through `vla.optim.build_optimizer`; routing presets: AdamW "adamw",
Muon "muon", Pion "vla_adapter" for VLA-Adapter and "vlanext" for flow matching. One fixed batch of 32
synthetic LIBERO-shaped observations is processed once (train=True) per model; every cell (model × optimizer)
has its own model copy (same seed) and optimizer. Cells run round-robin, one step each per round, so machine
drift hits all of them equally; `--warmup` rounds are discarded, then `--steps` rounds are timed.
A step = compute_loss + backward (fwd+bwd) | optimizer.step | zero_grad(set_to_none); medians are reported.
The processor's train-time preprocessing of a batch (it runs in the training process) is timed once per round
per model, so its share of a real step (processor + training step) can be read off.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from omegaconf import OmegaConf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from model_speed import cpu_flags, observation  # noqa: E402

from vla.models.processor import default_stats  # noqa: E402
from vla.models.registry import build_model, build_processor, model_config_from_dict  # noqa: E402
from vla.optim import build_optimizer  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PION_PRESET = {"vla_adapter": "vla_adapter", "flow_matching": "vlanext"}
OPTIM_PRESET = {"adamw": "adamw", "muon": "muon"}


def optim_cfg(optim: str, model_name: str) -> dict:
    cfg = OmegaConf.to_container(OmegaConf.load(ROOT / "configs" / "optim" / f"{optim}.yaml"), resolve=True)
    cfg["preset"] = PION_PRESET[model_name] if optim == "pion" else OPTIM_PRESET[optim]
    cfg["verbose"] = False
    return cfg


def setup_model(name: str, batch: int, input_size: int | None = None) -> dict:
    """`input_size`: camera frames of this size (the processor's input_image_size); None = the model config's."""
    cfg = OmegaConf.to_container(
        OmegaConf.load(ROOT / "configs" / "model" / f"{name}_cpu.yaml"), resolve=True
    )
    if input_size is not None:
        cfg.setdefault("processor", {})["input_image_size"] = input_size
    config = model_config_from_dict(cfg)
    processor = build_processor(
        config, cfg.get("processor"), default_stats(config.proprio_dim, config.action_dim)
    )
    obs = observation(batch, size=input_size or cfg.get("processor", {}).get("input_image_size", 256))
    gen = torch.Generator().manual_seed(0)
    inputs = processor(obs, train=True, generator=gen)
    return {"config": config, "processor": processor, "obs": obs, "gen": gen, "inputs": inputs, "proc": []}


def setup_cell(model_name: str, optim: str, m: dict) -> dict:
    torch.manual_seed(0)
    model = build_model(m["config"], pretrained=False)
    model.train()
    opt = build_optimizer(model, optim_cfg(optim, model_name))
    return {"model": model, "opt": opt, "total": [], "fwd_bwd": [], "opt_step": [], "zero": []}


def step(cell: dict, inputs: dict) -> tuple[float, float, float]:
    t0 = time.perf_counter()
    loss, _ = cell["model"].compute_loss(inputs)
    loss.backward()
    t1 = time.perf_counter()
    cell["opt"].step()
    t2 = time.perf_counter()
    cell["opt"].zero_grad(set_to_none=True)
    t3 = time.perf_counter()
    if not torch.isfinite(loss):
        raise RuntimeError(f"non-finite loss {loss.item()}")
    return t1 - t0, t2 - t1, t3 - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="*", default=["vla_adapter", "flow_matching"])
    ap.add_argument("--optims", nargs="*", default=["adamw", "muon", "pion"])
    ap.add_argument("--steps", type=int, default=10, help="timed rounds (one step of every cell per round)")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--input-size", type=int, default=None, help="camera frame size (the demo: 128)")
    ap.add_argument("--json-out", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    meta = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "commit": commit.stdout.strip(),
            "torch": torch.__version__, "python": platform.python_version(), "threads": torch.get_num_threads(),
            "cpu": cpu_flags(), "batch": args.batch, "warmup": args.warmup, "steps": args.steps,
            "input_size": args.input_size or "model config"}  # fmt: skip
    print(
        f"# train_step  {meta['date']}  commit {meta['commit']}  torch {meta['torch']}  threads {meta['threads']}"
        f"  frames {meta['input_size']}"
    )
    print(f"# cpu: {meta['cpu']}")
    models = {name: setup_model(name, args.batch, args.input_size) for name in args.models}
    cells = {(mn, on): setup_cell(mn, on, models[mn]) for mn in args.models for on in args.optims}
    for rnd in range(args.warmup + args.steps):
        for m in models.values():  # processor, train-time preprocessing of one batch
            t0 = time.perf_counter()
            m["processor"](m["obs"], train=True, generator=m["gen"])
            if rnd >= args.warmup:
                m["proc"].append(time.perf_counter() - t0)
        for cell_key in cells:
            fb, os_, tot = step(cells[cell_key], models[cell_key[0]]["inputs"])
            if rnd >= args.warmup:
                c = cells[cell_key]
                c["fwd_bwd"].append(fb), c["opt_step"].append(os_), c["total"].append(tot)
    med = statistics.median
    results = []
    for (mn, on), c in cells.items():
        total, proc = med(c["total"]), med(models[mn]["proc"])
        base = cells.get((mn, "adamw"))
        results.append({
            "model": mn, "optim": on, "preset": optim_cfg(on, mn)["preset"],
            "params_M": sum(p.numel() for p in c["model"].parameters()) / 1e6,
            "step_s": total, "fwd_bwd_s": med(c["fwd_bwd"]), "opt_step_s": med(c["opt_step"]),
            "opt_share": med(c["opt_step"]) / total, "samples_per_s": args.batch / total,
            "vs_adamw": total / med(base["total"]) if base else None,
            "opt_step_vs_adamw": med(c["opt_step"]) / med(base["opt_step"]) if base else None,
            "processor_s": proc, "processor_share": proc / (proc + total),
            "step_s_all": c["total"], "opt_step_s_all": c["opt_step"],
        })  # fmt: skip
    print("\n| model | optimizer (preset) | step | fwd+bwd | optimizer.step | opt share | samples/s "
          "| step vs AdamW | opt.step vs AdamW | processor (share of proc+step) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        ratio = f"{r['vs_adamw']:.3f}×" if r["vs_adamw"] is not None else "—"
        oratio = f"{r['opt_step_vs_adamw']:.2f}×" if r["opt_step_vs_adamw"] is not None else "—"
        print(f"| {r['model']}_cpu ({r['params_M']:.2f}M) | {r['optim']} ({r['preset']}) | {r['step_s'] * 1e3:.0f} ms "
              f"| {r['fwd_bwd_s'] * 1e3:.0f} ms | {r['opt_step_s'] * 1e3:.1f} ms | {100 * r['opt_share']:.1f}% "
              f"| {r['samples_per_s']:.1f} | {ratio} | {oratio} | {r['processor_s'] * 1e3:.0f} ms "
              f"({100 * r['processor_share']:.0f}%) |")  # fmt: skip
    spread = {f"{r['model']}/{r['optim']}": max(r["step_s_all"]) / min(r["step_s_all"]) for r in results}
    print("# step time max/min per cell (drift check; > 1.5 means the machine was not quiet): "
          + ", ".join(f"{k} {v:.2f}" for k, v in spread.items()))  # fmt: skip
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps({"meta": meta, "results": results}, indent=1))
        print(f"# wrote {args.json_out}")


if __name__ == "__main__":
    main()
