"""Measure scripted-expert success per task under the standard protocol (no cameras).

    python -m envs.experts.evaluate --suite libero_object --tasks all --states 0-49 --workers 2 \
        --out outputs/expert_eval/libero_object.json

Each (task, init state) runs once, success from the env's BDDL predicates. Prints a markdown table;
`--out` also writes every episode's result as JSON. Workers are separate processes (one env each).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import time
from dataclasses import asdict
from pathlib import Path

from envs.workers import usable_cores

MAX_WORKERS = usable_cores()  # one simulator process per core


def parse_ids(spec: str, n: int, what: str) -> list[int]:
    """'all', '3', '0-9' or '1,4,7' -> sorted ids, each checked against range(n)."""
    if spec == "all":
        return list(range(n))
    ids: set[int] = set()
    try:
        for part in spec.split(","):
            lo, _, hi = part.partition("-")
            ids.update(range(int(lo), int(hi or lo) + 1))
    except ValueError as e:
        raise ValueError(f"bad {what} spec {spec!r}: use 'all', '3', '0-9' or '1,4,7'") from e
    bad = sorted(i for i in ids if not 0 <= i < n)
    if bad:
        raise ValueError(f"{what} {bad} out of range 0..{n - 1}")
    return sorted(ids)


def _run_task(args: tuple[str, int, list[int]]) -> list[dict]:
    """Every init state of one task; a task the expert cannot plan counts as failed (phase 'unsupported')."""
    suite, task_id, states = args
    from envs.experts.registry import make_expert
    from envs.experts.runner import EpisodeResult, run_episode
    from envs.experts.scene import UnsupportedTaskError
    from envs.libero.env import LiberoEnv

    env = LiberoEnv(suite, task_id, cameras=())
    try:
        try:
            expert = make_expert(env, allow_unsupported=True)
        except UnsupportedTaskError as e:
            print(f"task {task_id}: {e}", file=sys.stderr)
            return [asdict(EpisodeResult(suite, task_id, i, False, 0, "unsupported")) for i in states]
        return [asdict(run_episode(env, i, expert=expert)) for i in states]
    finally:
        env.close()


def evaluate(suite: str, tasks: list[int], states: list[int], workers: int = 1) -> list[dict]:
    jobs = [(suite, t, states) for t in tasks]
    workers = max(1, min(workers, MAX_WORKERS, len(jobs)))
    if workers == 1:
        return [r for job in jobs for r in _run_task(job)]
    with mp.get_context("spawn").Pool(workers) as pool:  # fresh processes: no GL context crosses a fork
        return [r for rs in pool.imap(_run_task, jobs) for r in rs]


def markdown_table(results: list[dict]) -> str:
    by_task: dict[int, list[dict]] = {}
    for r in results:
        by_task.setdefault(r["task_id"], []).append(r)
    lines = ["| task | success | mean steps (successes) |", "|---|---|---|"]
    for t, rs in sorted(by_task.items()):
        ok = [r for r in rs if r["success"]]
        steps = f"{sum(r['steps'] for r in ok) / len(ok):.0f}" if ok else "-"
        lines.append(f"| {t} | {len(ok)}/{len(rs)} ({100 * len(ok) / len(rs):.0f}%) | {steps} |")
    n_ok = sum(r["success"] for r in results)
    lines.append(f"| **all** | **{n_ok}/{len(results)} ({100 * n_ok / max(len(results), 1):.1f}%)** | |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suite", required=True)
    parser.add_argument("--tasks", default="all")
    parser.add_argument("--states", default="0-49")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--out", type=Path)
    parser.add_argument(
        "--allow-unsupported", action="store_true", help="also sweep suites not (yet) in SUPPORTED_SUITES"
    )
    args = parser.parse_args(argv)

    from envs.experts.registry import SUPPORTED_SUITES
    from envs.libero.constants import NUM_INIT_STATES
    from envs.libero.tasks import num_tasks

    if args.suite not in SUPPORTED_SUITES and not args.allow_unsupported:
        sys.exit(
            f"error: no scripted expert for {args.suite!r}; supported: {', '.join(SUPPORTED_SUITES)} "
            "(--allow-unsupported sweeps it anyway)"
        )
    try:
        tasks = parse_ids(args.tasks, num_tasks(args.suite), "task ids")
        states = parse_ids(args.states, NUM_INIT_STATES, "init states")
    except ValueError as e:
        sys.exit(f"error: {e}")
    t0 = time.time()
    results = evaluate(args.suite, tasks, states, args.workers)
    print(markdown_table(results))
    print(f"{len(results)} episodes in {time.time() - t0:.0f} s")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"suite": args.suite, "results": results}, indent=1))
        for r in results:
            if not r["success"]:
                print(f"failed: task {r['task_id']} state {r['init_state']} (phase {r['phase']})")


if __name__ == "__main__":
    main()
