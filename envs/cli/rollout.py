"""pion-rollout: run a policy on LIBERO episodes, write an MP4 per episode and a summary JSON."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
from omegaconf import DictConfig
from tqdm import tqdm

from vla.config import hydra_cli


def rollout(cfg: DictConfig) -> dict:
    from envs.libero import make_env
    from envs.policies import POLICY_NAMES, make_policy
    from envs.rollout import run_episode, write_video

    if cfg.policy not in POLICY_NAMES:  # fail before paying ~10 s for the simulator
        raise ValueError(f"unknown policy {cfg.policy!r}; valid: {', '.join(POLICY_NAMES)}")
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    env = make_env(cfg.suite, cfg.task_id, resolution=cfg.resolution)
    try:
        policy = make_policy(cfg.policy, env)
        episodes = []
        for idx in cfg.init_states:
            bar = tqdm(total=env.max_steps, desc=f"{cfg.suite}/{cfg.task_id} init {idx}", unit="step", mininterval=1.0)
            res = run_episode(env, policy, int(idx), video_fps=cfg.video_fps if cfg.video else None, on_step=lambda _, b=bar: b.update())
            bar.close()
            record = {"init_state": int(idx), "success": res.success, "steps": res.steps, "seconds": round(res.seconds, 2)}
            if res.error:
                record["error"] = res.error
            if cfg.video and res.frames:
                video = out / f"{cfg.suite}_task{cfg.task_id}_init{idx}_{'success' if res.success else 'failure'}.mp4"
                write_video(res.frames, video, cfg.video_fps)
                record["video"] = str(video)
            episodes.append(record)
            print(json.dumps(record))
    finally:
        env.close()
    summary = {
        "suite": cfg.suite,
        "task_id": cfg.task_id,
        "task": env.task.language,
        "policy": cfg.policy,
        "success_rate": sum(e["success"] for e in episodes) / len(episodes),
        "episodes": episodes,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"success {summary['success_rate']:.0%} over {len(episodes)} episode(s); results in {out}")
    return summary


@hydra_cli("rollout")
def main(cfg: DictConfig) -> None:
    """Roll out a policy on LIBERO (configs/rollout.yaml)."""
    if not cfg.init_states:
        raise SystemExit("init_states is empty: give at least one index, e.g. init_states=[0]")
    rollout(cfg)
