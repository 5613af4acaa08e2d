"""Policy model speed: CPU-scale forward+backward and one-chunk latency (fp32 vs bf16), real-size sizes.

    flock /tmp/pion-heavy.lock .venv/bin/python benchmarks/model_speed.py                # every registered model
    .venv/bin/python benchmarks/model_speed.py --models vla_adapter --iters 5 --threads 2
    .venv/bin/python benchmarks/model_speed.py --device cuda --real                      # on a GPU: real size

Models come from vla.models.registry (MODEL_TYPES) with their `configs/model/<name>_cpu.yaml`; inputs are
synthetic LIBERO-shaped observations (2 cameras 256², 8-D state, 8x7 chunks) through the real processor.
Forward+backward = processor(train=True) excluded, model.compute_loss + backward timed (median).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf

from vla.models.policy import TorchPolicy
from vla.models.processor import default_stats
from vla.models.registry import MODEL_TYPES, build_model, build_processor, model_config_from_dict
from vla.models.sizes import meta_model, parameter_counts

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "model"
TASKS = ["put the black bowl on the plate", "open the top drawer and put the bowl inside"]


def cpu_flags() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown"
    flags = set(next((ln for ln in text.splitlines() if ln.startswith("flags")), "").split())
    model = next(
        (ln.split(":", 1)[1].strip() for ln in text.splitlines() if ln.startswith("model name")), "?"
    )
    wanted = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")
    return f"{model}; " + ", ".join(f"{f}={'yes' if f in flags else 'no'}" for f in wanted)


def observation(batch: int, seed: int = 0, with_action: bool = True, size: int = 256) -> dict:
    rng = np.random.default_rng(seed)
    obs = {
        "observation.images.image": rng.integers(0, 256, (batch, size, size, 3), dtype=np.uint8),
        "observation.images.image2": rng.integers(0, 256, (batch, size, size, 3), dtype=np.uint8),
        "observation.state": rng.uniform(-1, 1, (batch, 8)).astype(np.float32),
        "task": [TASKS[i % 2] for i in range(batch)],
    }
    if with_action:
        obs["action"] = rng.uniform(-1, 1, (batch, 8, 7)).astype(np.float32)
        obs["action_is_pad"] = np.zeros((batch, 8), dtype=bool)
    return obs


def autocast(device: str, dtype: torch.dtype | None):
    return torch.autocast(device, dtype=dtype) if dtype is not None else contextlib.nullcontext()


def timed(fn, iters: int, warmup: int = 2, sync=lambda: None) -> float:
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_model(cfg_dict: dict, device: str, batch: int, iters: int) -> dict[str, float]:
    torch.manual_seed(0)
    config = model_config_from_dict(cfg_dict)
    model = build_model(config, pretrained=False).to(device)
    processor = build_processor(
        config, cfg_dict.get("processor"), default_stats(config.proprio_dim, config.action_dim)
    )
    obs = observation(batch)
    gen = torch.Generator().manual_seed(0)
    t_proc = timed(lambda: processor(obs, train=True, generator=gen), max(2, iters // 2), warmup=1)
    inputs = {k: v.to(device) for k, v in processor(obs, train=True, generator=gen).items()}
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    out = {"params_M": sum(p.numel() for p in model.parameters()) / 1e6, "processor_s": t_proc,
           "tokens": int(inputs["attention_mask"].shape[1] + config.num_images * config.backbone.patches_per_image)}  # fmt: skip
    model.train()
    for name, dtype in (("fp32", None), ("bf16", torch.bfloat16)):

        def step(dtype=dtype):
            with autocast(device, dtype):
                loss, _ = model.compute_loss(inputs)
            loss.backward()
            model.zero_grad(set_to_none=True)

        out[f"fwd_bwd_{name}_s"] = timed(step, iters, sync=sync)
    policy = TorchPolicy(model, processor, device=device)
    one = observation(1, seed=1, with_action=False)
    for name, dtype in (("fp32", None), ("bf16", torch.bfloat16)):
        policy.dtype = dtype
        out[f"chunk_{name}_s"] = timed(lambda: policy.predict_chunk(one), iters * 2, sync=sync)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="*", default=None, help="model types (default: all with a *_cpu.yaml)")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--real", action="store_true", help="also time the real-size model (GPU: batch 8, bf16)")
    ap.add_argument(
        "--set",
        nargs="*",
        default=[],
        help="dotlist overrides of the CPU config, e.g. backbone.patch_size=16",
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    models = args.models or [m for m in MODEL_TYPES if (CONFIGS / f"{m}_cpu.yaml").is_file()]
    print(f"# model_speed  {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}  torch {torch.__version__}  "
          f"python {platform.python_version()}  threads {torch.get_num_threads()}  device {args.device}")  # fmt: skip
    print(f"# cpu: {cpu_flags()}  (os.cpu_count={os.cpu_count()})")
    print(
        "| model | params | seq tokens | processor (B=32, train) | fwd+bwd fp32 | fwd+bwd bf16 | chunk fp32 | chunk bf16 |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name in models:
        cfg = OmegaConf.merge(OmegaConf.load(CONFIGS / f"{name}_cpu.yaml"), OmegaConf.from_dotlist(args.set))
        r = bench_model(OmegaConf.to_container(cfg, resolve=True), args.device, args.batch, args.iters)
        print(f"| {name}_cpu | {r['params_M']:.2f}M | {r['tokens']} | {r['processor_s']:.3f} s | {r['fwd_bwd_fp32_s']:.3f} s "
              f"| {r['fwd_bwd_bf16_s']:.3f} s | {1e3 * r['chunk_fp32_s']:.1f} ms | {1e3 * r['chunk_bf16_s']:.1f} ms |")  # fmt: skip
    print("\n# real size, built on the meta device: parameters per module")
    for name in models:
        counts = parameter_counts(meta_model(name))
        print(f"{name}: " + ", ".join(f"{k} {v / 1e6:.3f}M" for k, v in counts.items()))
    if args.real:
        real_size(models, args.device)


def real_size(models: list[str], device: str) -> None:
    """Real-size random-init model: one-chunk latency (B=1) and, on a GPU, fwd+bwd at batch 8 in bf16."""
    for name in models:
        print(_real_one(name, device))


def _real_one(name: str, device: str) -> str:
    cfg = OmegaConf.to_container(OmegaConf.load(CONFIGS / f"{name}.yaml"), resolve=False)
    cfg["backbone"] = {"preset": "real"}  # random init: no weight directories needed
    config = model_config_from_dict(cfg)
    model = build_model(config, pretrained=False).to(device)
    processor = build_processor(
        config, cfg.get("processor"), default_stats(config.proprio_dim, config.action_dim)
    )
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    one = observation(1, seed=1, with_action=False)
    line = f"{name} real size on {device}: chunk latency (B=1)"
    for label, dtype in (("fp32", None), ("bf16", torch.bfloat16)):
        policy = TorchPolicy(model, processor, device=device, dtype=dtype)
        chunk = timed(
            lambda p=policy: p.predict_chunk(one), 10 if device == "cuda" else 2, warmup=1, sync=sync
        )
        line += f" {label} {1e3 * chunk:.0f} ms"
    if device == "cuda":
        model.train()
        inputs = {k: v.to(device) for k, v in processor(observation(8), train=True).items()}

        def step():
            with torch.autocast("cuda", dtype=torch.bfloat16):
                loss, _ = model.compute_loss(inputs)
            loss.backward()
            model.zero_grad(set_to_none=True)

        line += f"; fwd+bwd batch 8 bf16 {timed(step, 5, sync=sync):.3f} s"
        line += f"; peak memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB"
    return line


if __name__ == "__main__":
    main()
