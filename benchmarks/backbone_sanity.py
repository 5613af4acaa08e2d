"""Does the shipped pretrained backbone help fine-tuning? Held-out L1 on libero_object, pretrained vs random init.

    flock /tmp/pion-heavy.lock .venv/bin/python benchmarks/backbone_sanity.py --data <libero_object dataset> \
        --train-episodes 0-7 --heldout-episodes 8-9 --steps 200 --out outputs/pretrain_backbone/sanity
    bash scripts/pretrain_backbone.sh sanity            # the same, after generating the libero_object demos

Arms (each a `pion-train` run of the demo's configuration, `--steps` updates with its own full schedule, same seed,
so the same fresh head): random init + AdamW (`+experiment=demo_scratch`), pretrained backbone + AdamW
(`init_backbone=<file>`), pretrained backbone + the paper's routing (`+experiment=demo`). Every
`--every` updates the checkpoint's L1 on the held-out episodes' normalised action chunks is measured without
the training input noise (`sample_actions`), over every valid start frame. Also plots the pretraining loss curve
from the pretraining run's metrics.jsonl (`--pretrain-metrics`). Writes <out>/sanity.json and the PNGs.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from omegaconf import OmegaConf

from vla.config import compose

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = "assets/backbones/vla_adapter_cpu_libero128.safetensors"
ARMS = {
    "random init, AdamW": ("demo_scratch", None),
    "pretrained, AdamW": ("demo_scratch", SHIPPED),
    "pretrained, Pion routing": ("demo", SHIPPED),
}


def episode_range(text: str) -> list[int]:
    lo, _, hi = text.partition("-")
    return list(range(int(lo), int(hi or lo) + 1))


@torch.no_grad()
def heldout_l1(checkpoint: Path, root: str, episodes: list[int], batch: int = 64) -> float:
    """Mean L1 over the normalised action chunks of every valid start frame of `episodes` (no input noise)."""
    from vla.data import collate_batch, open_chunk_dataset
    from vla.models.checkpoint import from_pretrained

    model, processor = from_pretrained(checkpoint)
    ds = open_chunk_dataset("local/sanity", root, chunk_len=model.config.chunk_len, episodes=episodes)
    total, count = 0.0, 0
    starts = [int(i) for i in ds.valid_starts]
    for i in range(0, len(starts), batch):
        inputs = processor(collate_batch([ds[j] for j in starts[i : i + batch]]), train=False)
        pred = model.sample_actions(inputs).float()
        total += float((pred - inputs["action"].float()).abs().sum())
        count += pred.numel()
    return total / count


def run_arm(name: str, args) -> dict:
    from vla.cli.train import run_training

    experiment, backbone = ARMS[name]
    cfg = OmegaConf.to_container(compose("train", [f"+experiment={experiment}"]), resolve=False)
    cfg.pop("demo")
    cfg["model"]["processor"]["input_image_size"] = 128  # the demo interpolates it from demo.resolution
    cfg = OmegaConf.to_container(OmegaConf.create(cfg), resolve=True)
    cfg.update(
        init_backbone=backbone, steps=args.steps, out_dir=str(args.out), run_name=name.replace(", ", "_")
    )
    cfg["data"] = {
        "repo_id": "local/sanity",
        "root": args.data,
        "episodes": episode_range(args.train_episodes),
    }
    cfg["checkpoint"] = {"every": args.every, "keep_last": 1000}
    cfg["log"] = {**cfg["log"], "progress": False, "tensorboard": False}
    cfg["optim"]["verbose"] = False
    t0 = time.monotonic()
    result = run_training(cfg)
    train_s = time.monotonic() - t0
    heldout = episode_range(args.heldout_episodes)
    curve = [{"step": 0, "l1": None}]
    for ckpt in sorted((result.run_dir / "checkpoints").glob("step_*/pretrained")):
        step = int(ckpt.parent.name.split("_")[1])
        curve.append({"step": step, "l1": heldout_l1(ckpt, args.data, heldout)})
        print(f"[sanity] {name}: step {step} held-out L1 {curve[-1]['l1']:.4f}", flush=True)
    return {"arm": name, "experiment": experiment, "init_backbone": backbone, "lr": cfg["optim"]["lr"],
            "preset": cfg["optim"]["preset"], "train_s": train_s, "curve": curve[1:]}  # fmt: skip


def plot(results: list[dict], png: Path, pretrain_metrics: Path | None, pretrain_png: Path | None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for r in results:
        ax.plot([p["step"] for p in r["curve"]], [p["l1"] for p in r["curve"]], marker="o", label=r["arm"])
    ax.set_xlabel("fine-tuning update (libero_object, fresh head)")
    ax.set_ylabel("held-out L1 (normalised actions)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(png, dpi=120)
    plt.close(fig)
    if pretrain_metrics is not None and pretrain_png is not None:
        from envs.demo import plot_loss

        plot_loss(pretrain_metrics, pretrain_png)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, help="a generated libero_object dataset (pion-gen-demos)")
    ap.add_argument("--train-episodes", default="0-7")
    ap.add_argument("--heldout-episodes", default="8-9")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--every", type=int, default=50)
    ap.add_argument("--arms", nargs="*", default=list(ARMS), choices=list(ARMS))
    ap.add_argument("--out", type=Path, default=Path("outputs/pretrain_backbone/sanity"))
    ap.add_argument("--png", type=Path, default=ROOT / "docs/img/pretrain_sanity.png")
    ap.add_argument("--pretrain-metrics", type=Path, default=None, help="the pretraining run's metrics.jsonl")
    ap.add_argument("--pretrain-png", type=Path, default=ROOT / "docs/img/pretrain_loss.png")
    args = ap.parse_args()
    if not Path(args.data).is_dir():
        print(f"error: --data {args.data} is not a dataset directory", file=sys.stderr)
        raise SystemExit(2)
    results = [run_arm(name, args) for name in args.arms]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "sanity.json").write_text(json.dumps(results, indent=1))
    plot(results, args.png, args.pretrain_metrics, args.pretrain_png)
    for r in results:
        last = r["curve"][-1]
        print(
            f"{r['arm']}: held-out L1 {last['l1']:.4f} after {last['step']} updates ({r['train_s'] / 60:.1f} min)"
        )


if __name__ == "__main__":
    main()
