"""MuJoCo visual options vs render time and image fidelity, on a LIBERO scene (software GL).

    MUJOCO_GL=egl HF_HUB_OFFLINE=1 PYTHONPATH=. python benchmarks/render_options.py --suite libero_object \
        --task 0 --frames 30 --out outputs/bench/render_options.json --png docs/img/render_options.png

One env, one scene state (init state 0 after the wait steps, plus 20 expert steps so the arm is in
view). For each variant the render context is reconfigured, `--frames` frames of both cameras are
rendered through `LiberoEnv.render_images` (the function datasets and evaluation use) and timed;
images are compared with the default renderer's pixel by pixel. Variants:
  default        robosuite's settings (what the public LIBERO data was rendered with)
  no_msaa        model.vis.quality.offsamples = 0 (no multisample anti-aliasing in the offscreen buffer)
  no_reflection  scene flag mjRND_REFLECTION off
  no_skybox      scene flag mjRND_SKYBOX off
  no_shadow      scene flag mjRND_SHADOW off (the lights already have castshadow=0)
  small_buffer   offscreen framebuffer sized to the image (256x256) instead of 640x480
  lossless       every option that left the pixels unchanged here (all but no_msaa)
  all            every option above at once
Timing is interleaved: `--rounds` rounds over all variants, median per variant (the machine is shared).
The PNG shows, per variant, the agentview image and the amplified (x8) absolute difference to default.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

VARIANTS = (
    "default",
    "no_msaa",
    "no_reflection",
    "no_skybox",
    "no_shadow",
    "small_buffer",
    "lossless",
    "all",
)
_LOSSLESS = {"no_reflection", "no_skybox", "no_shadow", "small_buffer"}
_FLAG_OF = {"no_reflection": "mjRND_REFLECTION", "no_skybox": "mjRND_SKYBOX", "no_shadow": "mjRND_SHADOW"}


def configure(ctx, variant: str, defaults: dict, resolution: int) -> None:
    """Put robosuite's offscreen render context `ctx` into `variant` (starting from `defaults`)."""
    import mujoco

    model = ctx.model
    model.vis.quality.offsamples = defaults["offsamples"]
    model.vis.global_.offwidth, model.vis.global_.offheight = defaults["offsize"]
    for flag in _FLAG_OF.values():
        ctx.scn.flags[getattr(mujoco.mjtRndFlag, flag)] = defaults[flag]
    wanted = {"all": _LOSSLESS | {"no_msaa"}, "lossless": _LOSSLESS}.get(variant, {variant})
    for name in wanted & set(_FLAG_OF):
        ctx.scn.flags[getattr(mujoco.mjtRndFlag, _FLAG_OF[name])] = 0
    if "no_msaa" in wanted:
        model.vis.quality.offsamples = 0
    if "small_buffer" in wanted:
        model.vis.global_.offwidth = model.vis.global_.offheight = resolution
    ctx.gl_ctx.make_current()
    ctx.con.free()  # rebuild the MjrContext so buffer size and sample count take effect
    ctx._set_mujoco_context_and_buffers()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suite", default="libero_object")
    parser.add_argument("--task", type=int, default=0)
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--out", type=Path, default=Path("outputs/bench/render_options.json"))
    parser.add_argument("--png", type=Path, default=None)
    args = parser.parse_args()

    import mujoco

    from envs.experts.registry import make_expert
    from envs.libero.env import LiberoEnv

    env = LiberoEnv(args.suite, args.task, resolution=args.resolution)
    try:
        env.reset(options={"init_state": 0, "render": False})
        expert = make_expert(env, allow_unsupported=True)
        expert.reset()
        for _ in range(20):
            env.step(expert.act(), render=False)
        env.render_images()  # creates the render context lazily on some stacks
        ctx = env.raw.sim._render_context_offscreen
        defaults = {
            "offsamples": int(ctx.model.vis.quality.offsamples),
            "offsize": (int(ctx.model.vis.global_.offwidth), int(ctx.model.vis.global_.offheight)),
        } | {flag: int(ctx.scn.flags[getattr(mujoco.mjtRndFlag, flag)]) for flag in _FLAG_OF.values()}

        images, times = {}, {v: [] for v in VARIANTS}
        for _ in range(args.rounds):
            for variant in VARIANTS:
                configure(ctx, variant, defaults, args.resolution)
                images[variant] = env.render_images()  # warm-up, and the image we compare
                t0 = time.perf_counter()
                for _ in range(args.frames):
                    env.render_images()
                times[variant].append(1000 * (time.perf_counter() - t0) / args.frames)
        rows = [
            {"variant": v, "ms_per_two_camera_frame": round(float(np.median(times[v])), 1)} for v in VARIANTS
        ]
        configure(ctx, "default", defaults, args.resolution)
        for row in rows:
            diffs = {}
            for key, ref in images["default"].items():
                d = np.abs(images[row["variant"]][key].astype(np.int16) - ref.astype(np.int16))
                diffs[key] = {
                    "mean_abs": round(float(d.mean()), 3),
                    "max_abs": int(d.max()),
                    "pct_pixels_over_8": round(100 * float((d.max(-1) > 8).mean()), 2),
                }
            row["diff_vs_default"] = diffs
            row["speedup"] = round(rows[0]["ms_per_two_camera_frame"] / row["ms_per_two_camera_frame"], 2)
    finally:
        env.close()

    result = {
        "suite": args.suite,
        "task": args.task,
        "resolution": args.resolution,
        "defaults": defaults,
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    for row in rows:
        d = row["diff_vs_default"]
        print(
            f"{row['variant']:14s} {row['ms_per_two_camera_frame']:7.1f} ms/frame  {row['speedup']:.2f}x  "
            + "  ".join(
                f"{k.split('.')[-1]}: mean {v['mean_abs']} max {v['max_abs']} >8: {v['pct_pixels_over_8']}%"
                for k, v in d.items()
            )
        )
    if args.png:
        save_png(images, rows, args.png)


def save_png(images: dict, rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = list(images["default"])
    fig, axes = plt.subplots(2 * len(keys), len(rows), figsize=(2.3 * len(rows), 4.8 * len(keys)))
    for j, row in enumerate(rows):
        v = row["variant"]
        for i, key in enumerate(keys):
            img, ref = images[v][key], images["default"][key]
            diff = np.clip(8 * np.abs(img.astype(np.int16) - ref.astype(np.int16)), 0, 255).astype(np.uint8)
            axes[2 * i, j].imshow(img)
            axes[2 * i + 1, j].imshow(diff)
            axes[2 * i, j].set_title(
                f"{v}\n{row['ms_per_two_camera_frame']} ms ({row['speedup']}x)", fontsize=8
            )
            axes[2 * i + 1, j].set_title(f"|diff| x8 ({key.split('.')[-1]})", fontsize=7)
    for ax in axes.flat:
        ax.axis("off")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
