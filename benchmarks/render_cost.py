"""CPU cost of rendering one LIBERO step (both cameras) vs image size and llvmpipe threads (software GL).

    MUJOCO_GL=egl HF_HUB_OFFLINE=1 PYTHONPATH=. python benchmarks/render_cost.py --suite libero_object --task 0

Answers two questions behind `envs.libero_bootstrap.share_cores_between_renderers` and the demonstration
generation figures in docs/benchmarks.md: is rendering bound by pixels or by geometry (time per step at several
resolutions), and how much CPU does a step cost with llvmpipe rasterising inline (`LP_NUM_THREADS=0`) or on
helper threads. Mesa reads LP_NUM_THREADS once per process, so every setting runs in its own child process;
settings run one after another (never two at once). Each child renders `--frames` steps through
`LiberoEnv.render_camera`, the function datasets and evaluation use, and reports wall and process CPU time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time


def measure(suite: str, task: int, resolutions: list[int], frames: int) -> list[dict]:
    """In this process: per resolution, wall and CPU milliseconds per two-camera step."""
    from envs.libero.env import LiberoEnv

    rows = []
    for res in resolutions:
        env = LiberoEnv(suite, task, resolution=res)
        env.reset(options={"init_state": 0})
        env.render_images()  # warm-up: first frame compiles shaders and uploads textures
        usage = resource.getrusage(resource.RUSAGE_SELF)
        cpu0, t0 = usage.ru_utime + usage.ru_stime, time.perf_counter()
        for _ in range(frames):
            env.render_images()
        usage = resource.getrusage(resource.RUSAGE_SELF)
        wall, cpu = time.perf_counter() - t0, usage.ru_utime + usage.ru_stime - cpu0
        rows.append({"resolution": res, "wall_ms": 1000 * wall / frames, "cpu_ms": 1000 * cpu / frames})
        env.close()
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--suite", default="libero_object")
    ap.add_argument("--task", type=int, default=0)
    ap.add_argument("--resolutions", type=int, nargs="+", default=[64, 128, 256])
    ap.add_argument("--threads", nargs="+", default=["0", "1", "2"], help="LP_NUM_THREADS values")
    ap.add_argument("--frames", type=int, default=15)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.child:
        print(json.dumps(measure(args.suite, args.task, args.resolutions, args.frames)))
        return
    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, {time.strftime('%Y-%m-%d %H:%M')}"
    )
    print("| LP_NUM_THREADS | resolution | wall ms / step | CPU ms / step |\n|---|---|---|---|")
    for threads in args.threads:
        cmd = [sys.executable, __file__, "--child", "--suite", args.suite, "--task", str(args.task),
               "--frames", str(args.frames), "--resolutions", *map(str, args.resolutions)]  # fmt: skip
        out = subprocess.run(
            cmd, env=os.environ | {"LP_NUM_THREADS": threads}, capture_output=True, text=True, check=True
        ).stdout
        for row in json.loads(out.strip().splitlines()[-1]):
            print(f"| {threads} | {row['resolution']}² | {row['wall_ms']:.0f} | {row['cpu_ms']:.0f} |")


if __name__ == "__main__":
    main()
