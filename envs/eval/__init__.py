"""Batch evaluation on LIBERO (and LIBERO-Plus style perturbations): parallel, resumable, shardable, reported.

    from envs.eval import EvalRun, build_episodes, evaluate
    eps = build_episodes(["libero_object"], None, trials_per_task=50, seeds=[7])
    summary = evaluate(EvalRun(out_dir="outputs/eval/x", policy="expert"), eps)

CLI: `pion-eval` (configs/eval.yaml); docs/eval.md.
"""

from envs.eval.episodes import Episode, build_episodes, parse_shard, select_shard
from envs.eval.harness import EvalRun, evaluate
from envs.eval.merge import merge
from envs.eval.summary import summarize, wilson_interval

__all__ = [
    "Episode",
    "EvalRun",
    "build_episodes",
    "evaluate",
    "merge",
    "parse_shard",
    "select_shard",
    "summarize",
    "wilson_interval",
]
