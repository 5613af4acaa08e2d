"""The main job (`pion-train +experiment=demo`): demonstrations -> training -> held-out evaluation -> report.

    1. demos     scripted-expert demonstrations of the configured LIBERO tasks, generated once into a cache
                 directory shared by later runs (resumable: an interrupted generation continues);
    2. train     `vla.cli.train.run_training` on that dataset (the configured model / optimizer / schedule);
    3. evaluate  the final checkpoint on init states whose demonstrations were NOT trained on (held out);
    4. report    <run>/report.md: success rate with its Wilson 95% CI, loss curve PNG, spectral summary,
                 one rollout MP4, the time each stage took, and the optimizer with the reason it was chosen.

It lives in `envs` because it drives the simulator; `vla` never imports it (the training CLI imports it lazily
when the config has a `demo` section).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPORT_FILE = "report.md"


@dataclass
class DemoConfig:
    """The `demo:` section of an experiment (configs/experiment/demo.yaml)."""

    suite: str = "libero_object"
    task_ids: list[int] = field(default_factory=lambda: [0])  # tasks with demonstrations and evaluation
    demos_per_task: int = 40  # successful expert demonstrations kept per task
    resolution: int = 128  # rendered camera side (must match model.processor.input_image_size)
    seed: int = 0  # init-state order of the demonstrations (envs.datagen.generate.init_state_for)
    cache_dir: str = "~/.cache/pion-vla/demos"  # generated datasets are reused from here by later runs
    gen_workers: int = 1  # simulator processes for generation (over tasks, or over one task's attempts)
    eval_trials_per_task: int = 10  # held-out init states evaluated per task
    eval_workers: int | str = "auto"
    eval_seed: int = 7
    videos_per_task: int = 2  # rollout MP4s kept per task (one success and one failure at most)
    optimizer_note: str = ""  # why this optimizer is the default; copied into the report

    def __post_init__(self) -> None:
        if self.demos_per_task < 1 or self.eval_trials_per_task < 1:
            raise ValueError("demo.demos_per_task and demo.eval_trials_per_task must be >= 1")
        self.task_ids = [int(t) for t in self.task_ids]

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DemoConfig:
        from vla.config import check_keys

        check_keys(cls, d, "demo")
        return cls(**d)

    @property
    def dataset_dir(self) -> Path:
        tasks = "-".join(str(t) for t in self.task_ids)
        name = f"{self.suite}_t{tasks}_n{self.demos_per_task}_r{self.resolution}_s{self.seed}"
        return Path(self.cache_dir).expanduser() / name


def ensure_demos(cfg: DemoConfig) -> tuple[Path, dict[int, list[int]]]:
    """Generate (or reuse) the demonstrations; return the dataset path and the init states used per task."""
    from envs.datagen import shards
    from envs.datagen.generate import GenConfig, generate, init_state_for

    gen = GenConfig(
        suite=cfg.suite, tasks=list(cfg.task_ids), episodes_per_task=cfg.demos_per_task, out=cfg.dataset_dir,
        seed=cfg.seed, resolution=cfg.resolution, workers=cfg.gen_workers, command="pion-train +experiment=demo",
    )  # fmt: skip
    path = generate(gen)
    if path is None:
        raise RuntimeError(f"demonstration generation produced no dataset under {cfg.dataset_dir}")
    used = {
        t: sorted(init_state_for(cfg.seed, t, a) for a in attempts)
        for t, attempts in shards.counted_attempts(cfg.dataset_dir, cfg.demos_per_task).items()
    }
    return Path(path), used


def held_out_init_states(used: list[int], n: int) -> list[int]:
    """The first `n` of the 50 fixed init states that no demonstration attempt started from."""
    from envs.libero.constants import NUM_INIT_STATES

    free = [i for i in range(NUM_INIT_STATES) if i not in set(used)]
    if len(free) < n:
        raise ValueError(
            f"only {len(free)} init states are held out from the demonstrations, {n} requested: "
            "lower demo.demos_per_task or demo.eval_trials_per_task"
        )
    return free[:n]


def evaluate_held_out(cfg: DemoConfig, export_dir: Path, used: dict[int, list[int]], out_dir: Path) -> dict:
    from envs.eval import EvalRun, build_episodes, evaluate

    episodes = []
    for t in cfg.task_ids:
        init = held_out_init_states(used.get(t, []), cfg.eval_trials_per_task)
        episodes += build_episodes([cfg.suite], [t], len(init), [cfg.eval_seed], init_states=init)
    run = EvalRun(
        out_dir=out_dir, policy=str(export_dir), workers=cfg.eval_workers, resolution=cfg.resolution,
        videos_per_task=cfg.videos_per_task, plot=False,
    )  # fmt: skip
    return evaluate(run, episodes)


def plot_loss(metrics_path: Path, png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in metrics_path.read_text().splitlines() if line.strip()]
    rows = [r for r in rows if "loss" in r]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot([r["step"] for r in rows], [r["loss"] for r in rows], lw=1)
    ax.set_xlabel("update")
    ax.set_ylabel("training loss")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(png, dpi=120)
    plt.close(fig)


def spectral_summary(run_dir: Path) -> str:
    """The last logged effective ranks per bucket (spectral.jsonl), as markdown lines."""
    path = run_dir / "spectral.jsonl"
    if not path.exists():
        return "_spectral diagnostics were off for this run (spectral.every = 0)._"
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if not rows:
        return "_no spectral diagnostics were logged._"
    last = rows[-1]
    keys = sorted(k for k in last if k != "step")
    lines = [
        f"At update {last['step']} (`{path.name}` has every logged step):",
        "",
        "| quantity | value |",
        "|---|---|",
    ]
    lines += [f"| {k} | {last[k]:.4g} |" for k in keys if isinstance(last[k], int | float)]
    return "\n".join(lines)


def write_report(
    run_dir: Path, cfg: DemoConfig, train_cfg: dict, summary: dict, timings: dict[str, float], used: dict
) -> Path:
    overall = summary["overall"]
    k, n = overall["successes"], overall["episodes"]
    lo, hi = overall["ci95"]
    png = run_dir / "loss.png"
    plot_loss(run_dir / "metrics.jsonl", png)
    videos = sorted(
        (run_dir / "eval_heldout" / "videos").glob("*.mp4"), key=lambda v: ("success" not in v.name, v.name)
    )
    video_line = "_no rollout video was kept._"
    if videos:
        shutil.copy(videos[0], run_dir / "rollout.mp4")
        video_line = f"[rollout.mp4](rollout.mp4) (copied from `{videos[0].relative_to(run_dir)}`)"
    optim = train_cfg["optim"]
    held = {t: held_out_init_states(used.get(t, []), cfg.eval_trials_per_task) for t in cfg.task_ids}
    lines = [
        "# Demo report: expert demonstrations -> CPU-scale policy -> held-out LIBERO evaluation",
        "",
        f"**Success: {k}/{n} = {100 * k / n:.0f}%** (Wilson 95% CI {100 * lo:.0f}–{100 * hi:.0f}%) on held-out init "
        f"states of {cfg.suite} task(s) {cfg.task_ids}: {held}. Target: ≥ 80% on ≥ 10 held-out episodes — "
        f"**{'met' if n >= 10 and k / n >= 0.8 else 'not met'}**.",
        "",
        "| stage | wall time |",
        "|---|---|",
        *(f"| {name} | {sec / 60:.1f} min |" for name, sec in timings.items()),
        "",
        f"- Model: `{train_cfg['model'].get('name', train_cfg['model'].get('model_type'))}`, "
        f"{train_cfg['steps']} updates at batch {train_cfg['batch_size']}.",
        f"- Optimizer: routing preset `{optim.get('preset', '-')}` (vla/optim/routing.py), lr {optim.get('lr')}, "
        f"schedule `{train_cfg.get('schedule', {}).get('name', '-')}`. {cfg.optimizer_note}",
        f"- Demonstrations: {cfg.demos_per_task} per task at {cfg.resolution}², cached in `{cfg.dataset_dir}`; "
        f"init states attempted: {used}.",
        f"- Run directory: `{run_dir}`; evaluation records in `eval_heldout/`.",
        f"- Command: `{' '.join(['pion-train', *sys.argv[1:]])}`; {machine_line()}",
        "",
        "## Training loss",
        "",
        "![loss](loss.png)",
        "",
        "## Spectral summary",
        "",
        spectral_summary(run_dir),
        "",
        "## Rollout",
        "",
        video_line,
        "",
    ]
    path = run_dir / REPORT_FILE
    path.write_text("\n".join(lines))
    return path


def machine_line() -> str:
    """Date, commit, CPU model and bf16 flags: what a reader needs to compare figures across machines."""
    import datetime
    import platform
    import subprocess

    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = "unknown"
    cpu, flags = platform.processor() or "unknown CPU", set()
    with contextlib.suppress(OSError):
        info = Path("/proc/cpuinfo").read_text()
        cpu = next(
            (ln.split(":", 1)[1].strip() for ln in info.splitlines() if ln.startswith("model name")), cpu
        )
        flags = {f for f in ("avx512_bf16", "amx_bf16") if f in info}
    return (
        f"commit {commit}, {datetime.date.today().isoformat()}, {os.cpu_count()} CPU cores ({cpu}; "
        f"bf16 flags: {', '.join(sorted(flags)) or 'none'})."
    )


def run_demo(plain_cfg: dict[str, Any]) -> Path:
    """Run the four stages from a resolved `pion-train` config that has a `demo` section; return report.md."""
    from vla.cli.train import run_training

    cfg = DemoConfig.from_dict(dict(plain_cfg["demo"]))
    train_cfg = {k: v for k, v in plain_cfg.items() if k != "demo"}
    timings: dict[str, float] = {}
    t0 = time.monotonic()
    print(
        f"[demo] 1/4 demonstrations: {cfg.demos_per_task} per task of {cfg.suite} {cfg.task_ids}", flush=True
    )
    dataset, used = ensure_demos(cfg)
    timings["demonstrations (0 when cached)"] = time.monotonic() - t0
    train_cfg["data"] = dict(train_cfg.get("data", {}), root=str(dataset))
    t0 = time.monotonic()
    print(f"[demo] 2/4 training on {dataset}", flush=True)
    result = run_training(train_cfg)
    timings["training"] = time.monotonic() - t0
    export = Path(result.run_dir) / "final"
    if not export.is_dir():
        from vla.train.state import latest_checkpoint

        latest = latest_checkpoint(Path(result.run_dir))
        if latest is None:
            raise RuntimeError(f"training finished without a checkpoint under {result.run_dir}")
        export = latest[1] / "pretrained"
    t0 = time.monotonic()
    print(f"[demo] 3/4 evaluating {export} on held-out init states", flush=True)
    summary = evaluate_held_out(cfg, export, used, Path(result.run_dir) / "eval_heldout")
    timings["held-out evaluation"] = time.monotonic() - t0
    report = write_report(Path(result.run_dir), cfg, train_cfg, summary, timings, used)
    print(f"[demo] 4/4 report: {report}", flush=True)
    return report
