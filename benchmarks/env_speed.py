"""Env steps/s: lerobot 0.6.1's `LiberoEnv` vs ours, same suite, same machine, same process.

    MUJOCO_GL=egl HF_HUB_OFFLINE=1 PYTHONPATH=. python benchmarks/env_speed.py --suite libero_object --task 0 \
        --episodes 3 --steps 100 --out outputs/bench/env_speed.json

Every variant replays the same action sequence (the scripted expert's first `--steps` actions from
init state 0, recorded once without cameras) for `--episodes` episodes over init states 0.. and
reports reset time, step-loop steps/s and whole-episode steps/s (reset + wait + steps). Variants:
  lerobot         lerobot.envs.libero.LiberoEnv, 2 cameras rendered by robosuite on every step (waits too)
  ours_every      ours, 2 cameras rendered on every step (what recording a dataset needs)
  ours_chunk8     ours, 2 cameras rendered on every 8th step (a policy executing 8-action chunks)
  ours_nocam      ours, no cameras (scripted experts, success sweeps)
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def expert_actions(suite: str, task: int, steps: int) -> np.ndarray:
    from envs.experts.registry import make_expert
    from envs.libero.env import LiberoEnv

    env = LiberoEnv(suite, task, cameras=())
    try:
        env.reset(options={"init_state": 0, "render": False})
        expert = make_expert(env)
        expert.reset()
        actions = []
        for _ in range(steps):
            a = expert.act()
            actions.append(a)
            env.step(a, render=False)
        return np.stack(actions)
    finally:
        env.close()


def bench_lerobot(suite: str, task: int, res: int, actions: np.ndarray, episodes: int) -> dict:
    from lerobot.envs.libero import LiberoEnv as LeRobotLiberoEnv
    from libero.libero import benchmark

    suite_obj = benchmark.get_benchmark_dict()[suite]()
    env = LeRobotLiberoEnv(suite_obj, task, suite, observation_width=res, observation_height=res)
    return _loop(lambda i: env.reset(seed=0), lambda a, t: env.step(a), actions, episodes, env.close)


def bench_ours(
    suite: str, task: int, res: int, actions: np.ndarray, episodes: int, every: int | None
) -> dict:
    from envs.libero.env import LiberoEnv

    env = LiberoEnv(
        suite, task, cameras=() if every is None else ("agentview", "robot0_eye_in_hand"), resolution=res
    )
    render = (lambda t: False) if every is None else (lambda t: t % every == 0)
    return _loop(
        lambda i: env.reset(options={"init_state": i, "render": every is not None}),
        lambda a, t: env.step(a, render=render(t)),
        actions,
        episodes,
        env.close,
    )


def _loop(reset, step, actions: np.ndarray, episodes: int, close) -> dict:
    resets, loops = [], []
    try:
        reset(0)  # warm-up: first reset pays one-off costs (GL context, shader compile)
        for i in range(episodes):
            t0 = time.perf_counter()
            reset(i)
            t1 = time.perf_counter()
            for t, a in enumerate(actions):
                step(a.astype(np.float64), t)
            resets.append(t1 - t0)
            loops.append(time.perf_counter() - t1)
    finally:
        close()
    n = len(actions)
    return {
        "reset_s": float(np.mean(resets)),
        "steps_per_s": float(n * episodes / np.sum(loops)),
        "episode_steps_per_s": float(n * episodes / (np.sum(loops) + np.sum(resets))),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suite", default="libero_object")
    parser.add_argument("--task", type=int, default=0)
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--episodes", type=int, default=3)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    from envs.libero_bootstrap import bootstrap

    bootstrap()
    actions = expert_actions(args.suite, args.task, args.steps)
    common = (args.suite, args.task, args.resolution, actions, args.episodes)
    results = {
        "lerobot": bench_lerobot(*common),
        "ours_every": bench_ours(*common, every=1),
        "ours_chunk8": bench_ours(*common, every=8),
        "ours_nocam": bench_ours(*common, every=None),
    }
    base = results["lerobot"]
    print(
        f"{args.suite} task {args.task}, {args.resolution}px, {args.episodes} episodes x {args.steps} steps"
    )
    print("| variant | reset (s) | steps/s (step loop) | steps/s (incl. reset) | vs lerobot (incl. reset) |")
    print("|---|---|---|---|---|")
    for name, r in results.items():
        speedup = r["episode_steps_per_s"] / base["episode_steps_per_s"]
        print(
            f"| {name} | {r['reset_s']:.2f} | {r['steps_per_s']:.1f} | {r['episode_steps_per_s']:.1f} | {speedup:.2f}x |"
        )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(vars(args) | {"out": str(args.out), "results": results}, indent=1))


if __name__ == "__main__":
    main()
