"""Generate N successful scripted demonstrations per task into a LeRobotDataset, resumably and in parallel.

Attempt k of task t starts from init state `perm_t[k mod 50]`, where perm_t is a permutation of the
50 fixed init states drawn from (seed, t); with action noise, attempt k's noise comes from
(seed, t, k). An episode is therefore a function of (seed, task, attempt) alone: neither the worker
count nor an interruption changes the dataset. Finished attempts live in shards (`envs.datagen.shards`);
the loadable dataset is re-merged every `merge_every` new episodes and at the end (`envs.datagen.merge`).
With more workers than tasks, a task's attempts are strided over several workers (`run_task`); the dataset
is still the first `episodes_per_task` successes of each task in attempt order.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing as mp
import queue as queue_mod
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from envs.datagen import shards
from envs.datagen.merge import merge_shards
from envs.libero.constants import NUM_INIT_STATES
from envs.workers import usable_cores

MAX_WORKERS = usable_cores()  # one simulator per core; more only contend
RESUME_KEYS = ("suite", "seed", "resolution", "layout", "action_noise", "use_videos")


class GenerationError(ValueError):
    """Bad generation settings, or settings that conflict with the run being resumed."""


@dataclass
class GenConfig:
    suite: str
    tasks: list[int]
    episodes_per_task: int
    out: Path
    seed: int = 0
    resolution: int = 256
    layout: str = "lerobot"
    workers: int = 1
    action_noise: float = 0.0
    max_attempts_per_task: int = 100
    merge_every: int = 20
    use_videos: bool = True
    command: str = ""
    progress: bool = True

    def run_info(self) -> dict:
        d = asdict(self) | {"out": str(self.out)}
        d.pop("progress")
        return d


@dataclass
class Report:
    task_id: int
    attempt: int
    success: bool
    frames: int = 0
    note: str = ""


def init_state_for(seed: int, task_id: int, attempt: int) -> int:
    perm = np.random.default_rng([seed, task_id]).permutation(NUM_INIT_STATES)
    return int(perm[attempt % NUM_INIT_STATES])


def validate(cfg: GenConfig) -> None:
    from envs.experts.registry import SUPPORTED_SUITES
    from envs.libero.tasks import get_task
    from vla.data.layouts import get_layout

    if cfg.suite not in SUPPORTED_SUITES:
        raise GenerationError(
            f"no scripted expert for suite {cfg.suite!r}; supported: {', '.join(SUPPORTED_SUITES)}"
        )
    if not cfg.tasks:
        raise GenerationError("no tasks selected")
    for t in cfg.tasks:
        get_task(cfg.suite, t)  # raises with the list of valid ids
    get_layout(cfg.layout)
    if cfg.episodes_per_task <= 0:
        raise GenerationError(f"episodes_per_task must be positive, got {cfg.episodes_per_task}")
    if cfg.episodes_per_task > NUM_INIT_STATES and cfg.action_noise <= 0:
        raise GenerationError(
            f"{cfg.episodes_per_task} episodes per task need more than the {NUM_INIT_STATES} init states: "
            "set action_noise > 0 so repeated init states give different demonstrations"
        )
    if not 1 <= cfg.workers <= MAX_WORKERS:
        raise GenerationError(
            f"workers must be in 1..{MAX_WORKERS} (this machine's cores), got {cfg.workers}"
        )
    if cfg.resolution <= 0:
        raise GenerationError(f"resolution must be positive, got {cfg.resolution}")


def _check_resume(cfg: GenConfig) -> None:
    """Refuse to mix episodes made with different settings in one output directory."""
    path = Path(cfg.out) / "run.json"
    info = cfg.run_info()
    if path.is_file():
        old = json.loads(path.read_text())
        diff = {k: (old.get(k), info[k]) for k in RESUME_KEYS if old.get(k) != info[k]}
        if diff:
            raise GenerationError(
                f"{cfg.out} holds a run with other settings (old, new): {diff}; use a new out dir"
            )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(info, indent=1))


def _enough_before(done: dict[int, bool], attempt: int, needed: int) -> bool:
    """True once `needed` attempts below `attempt` succeeded (done: {attempt: ok}): it can no longer count."""
    return sum(ok for a, ok in done.items() if a < attempt) >= needed


def run_task(
    cfg: GenConfig, task_id: int, report: Callable[[Report], None], offset: int = 0, stride: int = 1
) -> None:
    """Worker body: attempts offset, offset + stride, ... of one task, until they can no longer count.

    With stride 1 this runs attempts in order until `episodes_per_task` succeeded. With stride k, k workers
    share one task; each stops at the first attempt that has `episodes_per_task` successes below it, so
    every attempt below the dataset's last one has run and the dataset (the first successes in attempt
    order, `shards.counted_attempts`) is the one stride 1 makes."""
    from envs.datagen.record import record_demo
    from envs.libero.env import LiberoEnv
    from vla.data.layouts import get_layout

    env = None
    try:
        for attempt in range(offset, cfg.max_attempts_per_task, stride):
            done = shards.scan(cfg.out).get(task_id, {})  # one directory listing per attempt
            if _enough_before(done, attempt, cfg.episodes_per_task):
                break
            if attempt in done:
                continue
            if attempt >= NUM_INIT_STATES and cfg.action_noise <= 0:
                report(Report(task_id, attempt, False, note="exhausted"))
                break
            env = env or LiberoEnv(cfg.suite, task_id, resolution=cfg.resolution, env_seed=cfg.seed)
            rng = np.random.default_rng([cfg.seed, task_id, attempt])
            init = init_state_for(cfg.seed, task_id, attempt)
            demo = record_demo(env, init, action_noise=cfg.action_noise, rng=rng)
            ok = demo.result.success and demo.length > 0
            if ok:
                shards.write_shard(
                    cfg.out, task_id, attempt, demo, get_layout(cfg.layout), cfg.resolution, cfg.use_videos
                )
            else:
                shards.mark_failed(
                    cfg.out, task_id, attempt, {"init_state": init, "phase": demo.result.phase}
                )
            report(Report(task_id, attempt, ok, demo.length))
    finally:
        if env is not None:
            env.close()


def _pool_worker(args: tuple[GenConfig, int, int, int, object]) -> int:
    cfg, task_id, offset, stride, q = args
    from envs.libero_bootstrap import share_cores_between_renderers

    share_cores_between_renderers(cfg.workers)
    run_task(cfg, task_id, q.put, offset, stride)
    return task_id


def attempt_stats(out: Path, per_task: int | None = None) -> dict[int, tuple[int, int]]:
    """{task: (successes, attempts)} counted as the dataset counts them (`shards.counted_attempts`)."""
    return {t: (sum(d.values()), len(d)) for t, d in shards.counted_attempts(out, per_task).items()}


def generate(cfg: GenConfig) -> Path | None:
    """Run (or resume) a generation; return the merged dataset's path."""
    from tqdm import tqdm

    validate(cfg)
    cfg.out = Path(cfg.out)
    _check_resume(cfg)
    shards.clean_tmp(cfg.out)
    have = {t: ok for t, (ok, _) in attempt_stats(cfg.out, cfg.episodes_per_task).items() if t in cfg.tasks}
    todo = [t for t in cfg.tasks if have.get(t, 0) < cfg.episodes_per_task]
    total = cfg.episodes_per_task * len(cfg.tasks)
    bar = tqdm(
        total=total,
        initial=sum(have.values()),
        desc=f"{cfg.suite} demos",
        unit="ep",
        disable=not cfg.progress,
        dynamic_ncols=True,
    )
    start, new_ok, since_merge, exhausted = time.time(), 0, 0, []

    def merge() -> Path | None:
        counted = attempt_stats(cfg.out, cfg.episodes_per_task)
        return merge_shards(cfg.out, cfg.run_info() | {"attempts": counted})

    def on_report(r: Report) -> None:
        nonlocal new_ok, since_merge
        if r.note == "exhausted":
            exhausted.append(r.task_id)
            return
        if r.success:
            new_ok, since_merge = new_ok + 1, since_merge + 1
            if bar.n < total:  # workers sharing a task may finish a success past its quota
                bar.update(1)
        hours = (time.time() - start) / 3600
        bar.set_postfix(
            ep_per_h=f"{new_ok / hours:.0f}" if hours > 0 else "-",
            task=r.task_id,
            last="ok" if r.success else "fail",
        )
        if since_merge >= cfg.merge_every:
            merge()
            since_merge = 0

    # Work units: with fewer tasks than workers, each task's attempts are strided over several workers.
    stride = max(1, cfg.workers // max(1, len(todo)))
    units = [(t, offset, stride) for t in todo for offset in range(stride)]
    workers = min(cfg.workers, len(units))
    if workers <= 1:
        for t, offset, k in units:
            run_task(cfg, t, on_report, offset, k)
    else:
        ctx = mp.get_context("spawn")  # fresh interpreters: no GL context crosses a fork
        # ProcessPoolExecutor workers are not daemonic, so lerobot's save_episode may start its own
        # encoder processes inside them (a multiprocessing.Pool worker may not have children).
        with ctx.Manager() as manager, ProcessPoolExecutor(workers, mp_context=ctx) as pool:
            q = manager.Queue()
            futures = [pool.submit(_pool_worker, (cfg, t, offset, k, q)) for t, offset, k in units]
            while not (all(f.done() for f in futures) and q.empty()):
                with contextlib.suppress(queue_mod.Empty):
                    on_report(q.get(timeout=0.5))
            for f in futures:
                f.result()  # re-raise a worker's exception
    bar.close()
    from envs.datagen.merge import dataset_path

    path = merge() if new_ok or not dataset_path(cfg.out).exists() else dataset_path(cfg.out).resolve()
    elapsed = time.time() - start
    if cfg.progress:
        rate = new_ok / (elapsed / 3600) if elapsed > 0 else 0.0
        print(f"{new_ok} new episodes in {elapsed:.0f} s ({rate:.0f} episodes/hour); dataset: {path}")
        for t in exhausted:
            print(f"warning: task {t} ran out of init states before {cfg.episodes_per_task} successes")
    return path
