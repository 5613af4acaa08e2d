"""Throughput of pion-eval vs lerobot-eval on libero_object: episodes/hour, same policy, same protocol settings.

The policy is a tiny random-init ACT (`pretrained_backbone_weights=null`, chunk 16, 8 actions executed per
query) trained 5 steps on a generated 2-episode dataset (reference §7), so every episode runs the full
280-step budget in both harnesses: equal simulated work. Both run 2 envs in parallel at 128x128, the
same init states of task 0, CPU inference.

    flock /tmp/pion-heavy.lock python benchmarks/eval_throughput.py --episodes 6 --out outputs/bench_eval
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def make_dataset(root: Path, res: int) -> None:
    import numpy as np
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    img = {"dtype": "image", "shape": (res, res, 3), "names": ["height", "width", "channel"]}
    features = {
        "observation.images.image": img,
        "observation.images.image2": img,
        "observation.state": {"dtype": "float32", "shape": (8,), "names": None},
        "action": {"dtype": "float32", "shape": (7,), "names": None},
    }
    ds = LeRobotDataset.create(
        repo_id="local/tiny_libero",
        fps=20,
        features=features,
        root=root,
        robot_type="panda",
        use_videos=False,
    )
    rng = np.random.default_rng(0)
    for _ in range(2):
        for _ in range(30):
            ds.add_frame(
                {
                    "observation.images.image": rng.integers(0, 255, (res, res, 3), dtype=np.uint8),
                    "observation.images.image2": rng.integers(0, 255, (res, res, 3), dtype=np.uint8),
                    "observation.state": rng.normal(size=8).astype(np.float32),
                    "action": rng.uniform(-1, 1, 7).astype(np.float32),
                    "task": "pick up the alphabet soup",
                }
            )
        ds.save_episode()
    ds.finalize()


def train(data: Path, out: Path) -> Path:
    cmd = [
        str(BIN / "lerobot-train"),
        "--dataset.repo_id=local/tiny_libero",
        f"--dataset.root={data}",
        "--policy.type=act",
        "--policy.device=cpu",
        "--policy.pretrained_backbone_weights=null",
        "--policy.chunk_size=16",
        "--policy.n_action_steps=8",
        "--policy.push_to_hub=false",
        "--steps=5",
        "--batch_size=2",
        "--wandb.enable=false",
        "--num_workers=0",
        f"--output_dir={out}",
        "--save_freq=5",
    ]
    subprocess.run(cmd, check=True, cwd=REPO)
    ckpt = out / "checkpoints" / "last" / "pretrained_model"
    if not ckpt.is_dir():
        raise SystemExit(f"no checkpoint at {ckpt}")
    return ckpt


def timed(cmd: list[str], log: Path) -> float:
    t0 = time.monotonic()
    with open(log, "w") as f:
        subprocess.run(cmd, check=True, cwd=REPO, stdout=f, stderr=subprocess.STDOUT)
    return time.monotonic() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--episodes", type=int, default=6)
    ap.add_argument("--res", type=int, default=128)
    ap.add_argument("--out", default="outputs/bench_eval")
    ap.add_argument("--skip-lerobot", action="store_true")
    args = ap.parse_args()
    sys.path.insert(0, str(REPO))
    from envs.libero_bootstrap import bootstrap

    bootstrap()  # LIBERO config + MUJOCO_GL in os.environ, inherited by both harnesses' processes
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    out = (REPO / args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    ckpt = out / "act" / "checkpoints" / "last" / "pretrained_model"
    if not ckpt.is_dir():
        shutil.rmtree(out / "data", ignore_errors=True)
        shutil.rmtree(out / "act", ignore_errors=True)
        make_dataset(out / "data", args.res)
        ckpt = train(out / "data", out / "act")
    n, res = args.episodes, args.res
    results = {
        "episodes": n,
        "resolution": res,
        "machine": f"{platform.node()} {os.cpu_count()} cores",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    ours_dir = out / "pion_eval"
    shutil.rmtree(ours_dir, ignore_errors=True)
    ours = [
        str(BIN / "python"),
        "-m",
        "envs.cli.eval",
        "policy=envs.eval.lerobot_policy:load",
        f"+policy_kwargs.path={ckpt}",
        "+policy_kwargs.device=cpu",
        "suites=[libero_object]",
        "task_ids=[0]",
        f"trials_per_task={n}",
        f"resolution={res}",
        "workers=2",
        "videos_per_task=0",
        "progress=false",
        f"out_dir={ours_dir}",
    ]
    results["pion_eval_cmd"] = " ".join(ours)
    results["pion_eval_wall_s"] = round(timed(ours, out / "pion_eval.log"), 1)
    info = json.loads((ours_dir / "run_info.json").read_text())
    results["pion_eval_loop_s"] = info["wall_seconds"]
    results["pion_eval_mean_batch"] = info["mean_policy_batch"]
    if not args.skip_lerobot:
        lr_dir = out / "lerobot_eval"
        shutil.rmtree(lr_dir, ignore_errors=True)
        lr = [
            str(BIN / "lerobot-eval"),
            f"--policy.path={ckpt}",
            "--env.type=libero",
            "--env.task=libero_object",
            "--env.task_ids=[0]",
            f"--env.observation_height={res}",
            f"--env.observation_width={res}",
            f"--eval.n_episodes={n}",
            "--eval.batch_size=2",
            "--policy.device=cpu",
            f"--output_dir={lr_dir}",
        ]
        results["lerobot_eval_cmd"] = " ".join(lr)
        results["lerobot_eval_wall_s"] = round(timed(lr, out / "lerobot_eval.log"), 1)
        lr_info = json.loads(next(lr_dir.rglob("eval_info.json")).read_text())
        results["lerobot_eval_info"] = {
            k: v for k, v in lr_info.get("overall", lr_info).items() if not isinstance(v, list)
        }
    for name in ("pion_eval", "lerobot_eval"):
        if f"{name}_wall_s" in results:
            results[f"{name}_episodes_per_hour"] = round(3600 * n / results[f"{name}_wall_s"], 1)
    if "lerobot_eval_wall_s" in results:
        results["speedup_wall"] = round(results["lerobot_eval_wall_s"] / results["pion_eval_wall_s"], 2)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
