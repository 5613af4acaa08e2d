"""Run an evaluation: episode list -> shard -> skip finished -> worker pool -> JSONL -> summary, plot, videos."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from envs.eval.episodes import Episode, parse_shard, select_shard
from envs.eval.results import RESULTS_FILE, ResultsWriter, read_records
from envs.eval.summary import print_table, summarize, write_summary
from envs.workers import auto_workers


@dataclass
class EvalRun:
    """Everything an evaluation needs besides the episode list (built from configs/eval.yaml by the CLI)."""

    out_dir: Path
    policy: Any = "hold"  # a spec for vla.policies.load_policy, or a Policy object (the trainer's eval hook)
    policy_kwargs: dict = field(default_factory=dict)
    policy_placement: str = "auto"
    workers: int | str = "auto"
    shard: str | None = None
    resolution: int = 256
    max_steps: int | None = None
    env_seed: int = 0
    n_action_steps: int | None = None
    temporal_ensemble: float | None = None
    episode_timeout_s: float = 900.0
    max_attempts: int = 3
    batch_wait_s: float = 0.05
    videos_per_task: int = (
        2  # episodes recorded per (suite, task, perturbation); kept: <= 1 success + 1 failure
    )
    video_fps: float = 10.0
    progress: bool = True
    plot: bool = True


def _video_sample(episodes: list[Episode], per_task: int) -> set[str]:
    """The first `per_task` episodes of each (suite, task, perturbation, severity): deterministic, shard-independent."""
    seen: dict[tuple, int] = defaultdict(int)
    keys = set()
    for e in episodes:
        g = (e.suite, e.task_id, e.perturbation, e.severity)
        if seen[g] < per_task:
            keys.add(e.key)
        seen[g] += 1
    return keys


def evaluate(run: EvalRun, episodes: list[Episode]) -> dict:
    """Run (or resume) the episodes of this shard; return the summary of every finished episode of the shard.

    `run.policy` is a spec (see `vla.policies`) or a policy object, which is then shared by all workers.
    Bad settings raise ValueError (a CLI turns it into exit status 2).
    """
    from envs.eval.policies import placement
    from envs.eval.pool import WorkerPool
    from envs.eval.worker import WorkerConfig
    from vla.config import build_from
    from vla.conventions import LIBERO_OSC_DELTA
    from vla.policies import load_policy

    out = Path(run.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    k, n = parse_shard(run.shard)
    videos = _video_sample(episodes, run.videos_per_task) if run.videos_per_task > 0 else set()
    mine = select_shard(episodes, k, n)
    results_path = out / RESULTS_FILE
    done = {r["key"]: r for r in read_records([results_path])} if results_path.exists() else {}
    mine_keys = {e.key for e in mine}
    stray = set(done) - mine_keys
    if stray:
        raise ValueError(
            f"{results_path} holds {len(stray)} episode(s) that are not part of this run "
            f"(e.g. {sorted(stray)[0]}): use a fresh out_dir or the same settings as before"
        )
    todo = [e for e in mine if e.key not in done]
    where = placement(run.policy, run.policy_placement)
    name = run.policy if isinstance(run.policy, str) else run.policy.spec.policy_id
    n_workers = auto_workers(run.workers, len(todo))
    video_dir = out / "videos"
    video_dir.mkdir(exist_ok=True)
    cfg = build_from(
        WorkerConfig,
        run,
        policy=name,
        policy_kwargs=dict(run.policy_kwargs),
        placement=where,
        video_dir=str(video_dir),
    )
    print(
        f"[pion-eval] shard {k}/{n}: {len(mine)} episodes, {len(done)} already finished, {len(todo)} to run; "
        f"{n_workers} worker(s), policy {name!r} in the {where}; results -> {results_path}",
        flush=True,
    )
    t0 = time.monotonic()
    records = list(done.values())
    kept_videos: dict[tuple, int] = defaultdict(int)
    for r in records:
        if r.get("video"):
            kept_videos[(r["suite"], r["task_id"], r["perturbation"], r["severity"], r["success"])] += 1
    if todo:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), unit="ep", desc="eval", disable=not run.progress, smoothing=0.1)
        with ResultsWriter(results_path) as writer:

            def on_record(rec: dict) -> None:
                g = (rec["suite"], rec["task_id"], rec["perturbation"], rec["severity"], rec["success"])
                if rec.get("video"):
                    if kept_videos[g] >= 1:  # keep one success and one failure per group
                        Path(rec["video"]).unlink(missing_ok=True)
                        rec["video"] = None
                    else:
                        kept_videos[g] += 1
                writer.write(rec)
                records.append(rec)
                ok = sum(r["success"] for r in records)
                bar.set_postfix_str(f"success {ok}/{len(records)} = {100 * ok / len(records):.1f}%")
                bar.update()

            parent_policy = None
            if where == "parent":
                parent_policy = load_policy(run.policy, action_space=LIBERO_OSC_DELTA, **run.policy_kwargs)
            pool = WorkerPool(
                n_workers,
                cfg,
                parent_policy=parent_policy,
                episode_timeout_s=run.episode_timeout_s,
                max_attempts=run.max_attempts,
                batch_wait_s=run.batch_wait_s,
            )
            try:
                pool.run(todo, on_record, video_keys=videos)
            finally:
                if parent_policy is not run.policy and hasattr(parent_policy, "close"):
                    parent_policy.close()
        bar.close()
        restarts, batches = pool.restarts, pool.policy_batches
    else:
        restarts, batches = 0, []
    elapsed = time.monotonic() - t0
    summary = summarize(records)
    write_summary(summary, out)
    run_info = {
        "shard": f"{k}/{n}",
        "episodes_in_shard": len(mine),
        "ran_now": len(todo),
        "resumed": len(done),
        "workers": n_workers,
        "policy": name,
        "policy_placement": where,
        "wall_seconds": round(elapsed, 2),
        "episodes_per_hour": round(3600 * len(todo) / elapsed, 1) if todo and elapsed > 0 else None,
        "worker_restarts": restarts,
        "mean_policy_batch": round(sum(batches) / len(batches), 3) if batches else None,
    }
    (out / "run_info.json").write_text(json.dumps(run_info, indent=2) + "\n")
    print_table(summary)
    if run.plot and records:
        from envs.eval.plot import plot_summary

        plot_summary(summary, out / "summary.png")
    return summary
