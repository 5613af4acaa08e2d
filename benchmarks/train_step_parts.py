"""The two non-model parts of a CPU training step, each against what it replaced, side by side in one run.

    flock /tmp/pion-heavy.lock .venv/bin/python benchmarks/train_step_parts.py

1. Train-time image augmentation of one batch (32 × 2 cameras, 128²): `vla.models.augment.augment_batch`
   (one grid_sample crop, elementwise jitter, one HSV round trip) vs the per-image torchvision pipeline it
   replaced (crop + resize, brightness, contrast, adjust_saturation, adjust_hue, image by image).
2. `optimizer.step()` for the CPU-scale VLA-Adapter (Muon preset "muon", Pion preset "vla_adapter") with
   Newton–Schulz in bf16 / float32 / auto and same-shape stacking on / off, next to AdamW.
Variants run round-robin (`--rounds`, first `--warmup` discarded); medians are reported.
"""

from __future__ import annotations

import argparse
import copy
import math
import statistics
import sys
import time
from pathlib import Path

import torch
import torchvision.transforms.v2.functional as TF

sys.path.insert(0, str(Path(__file__).resolve().parent))
from model_speed import cpu_flags  # noqa: E402
from train_step import optim_cfg, setup_model  # noqa: E402

from vla.models.augment import Jitter, augment_batch  # noqa: E402
from vla.models.registry import build_model  # noqa: E402
from vla.optim import build_optimizer  # noqa: E402
from vla.optim.orthogonalized import ns_compute_dtype  # noqa: E402

JITTER = Jitter(brightness=0.2, contrast=(0.8, 1.2), saturation=(0.8, 1.2), hue=0.05)


def per_image(x: torch.Tensor, side: int, g: torch.Generator) -> torch.Tensor:
    """The replaced path: every image through torchvision's single-image functions."""
    s, out = x.shape[-1], []
    for img in x:
        u = torch.rand(6, generator=g, dtype=torch.float64).tolist()
        top, left = int(u[0] * (s - side + 1)), int(u[1] * (s - side + 1))
        img = img[:, top : top + side, left : left + side]
        img = TF.resize(img, [s, s], interpolation=TF.InterpolationMode.BILINEAR, antialias=True).clamp(0, 1)
        img = (img + (-0.2 + 0.4 * u[2])).clamp(0, 1)
        mean = img.mean(dim=(-2, -1), keepdim=True)
        img = ((img - mean) * (0.8 + 0.4 * u[3]) + mean).clamp(0, 1)
        img = TF.adjust_saturation(img, 0.8 + 0.4 * u[4]).clamp(0, 1)
        out.append(TF.adjust_hue(img, -0.05 + 0.1 * u[5]))
    return torch.stack(out)


def time_rounds(fns: dict, rounds: int, warmup: int, reset=None) -> dict[str, float]:
    times = {k: [] for k in fns}
    for r in range(rounds):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            if r >= warmup:
                times[k].append(time.perf_counter() - t0)
            if reset is not None:
                reset()
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"# train_step_parts  {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}  torch {torch.__version__}"
          f"  threads {torch.get_num_threads()}\n# cpu: {cpu_flags()}")  # fmt: skip

    x = torch.rand(64, 3, 128, 128, generator=torch.Generator().manual_seed(0))  # 32 samples × 2 cameras
    side = round(128 * math.sqrt(0.9))
    g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    aug = time_rounds(
        {"batched (vla.models.augment)": lambda: augment_batch(x, side, JITTER, g1),
         "per-image torchvision (replaced)": lambda: per_image(x, side, g2)},
        args.rounds, args.warmup,
    )  # fmt: skip
    print("\n| augmentation, 64 images 128² | ms |\n|---|---|")
    for k, v in aug.items():
        print(f"| {k} | {v * 1e3:.1f} |")

    m = setup_model("vla_adapter", 32)
    torch.manual_seed(0)
    model = build_model(m["config"], pretrained=False)
    loss, _ = model.compute_loss(m["inputs"])
    loss.backward()
    saved = copy.deepcopy(model.state_dict())

    def variant(optim: str, dtype: str | None = None, stack: bool | None = None):
        cfg = optim_cfg(optim, "vla_adapter")
        for k in ("muon", "pion"):
            if k in cfg:
                cfg[k].update({"ns_dtype": dtype, "stack_same_shape": stack} if dtype else {})
        return build_optimizer(model, cfg)

    opts = {"adamw": variant("adamw")}
    for o in ("muon", "pion"):
        for d in ("bfloat16", "float32", "auto"):
            for s in (False, True):
                opts[f"{o} ns_dtype={d} stack={s}"] = variant(o, d, s)
    res = time_rounds({k: o.step for k, o in opts.items()}, args.rounds, args.warmup,
                      reset=lambda: model.load_state_dict(saved))  # fmt: skip
    auto = ns_compute_dtype("auto", torch.device("cpu"))
    print(f"\n| optimizer.step, vla_adapter_cpu (auto resolved to {auto}) | ms | vs AdamW |\n|---|---|---|")
    for k, v in res.items():
        print(f"| {k} | {v * 1e3:.1f} | {v / res['adamw']:.2f}× |")


if __name__ == "__main__":
    main()
