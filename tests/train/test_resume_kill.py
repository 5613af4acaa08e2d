"""Exact resume: a run killed with SIGKILL at a random step and resumed reproduces the uninterrupted run's loss
trajectory bit for bit (CPU, 2 dataloader workers, grad accumulation, cosine warmup, EMA, clipping, spectral
hooks, a model drawing from the global RNG and a processor drawing from its own generator)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent
STEPS = 40


def _spec(out: Path) -> dict:
    return {
        "delay": 0.03,
        "train": {
            "steps": STEPS, "batch_size": 16, "grad_accum": 2, "num_workers": 2, "out_dir": str(out),
            "run_name": "r", "grad_clip": 0.5, "ema": {"decay": 0.9},
            "schedule": {"name": "cosine", "warmup_steps": 5, "min_lr_ratio": 0.1},
            "checkpoint": {"every": 6, "keep_last": 2}, "spectral": {"every": 5},
            "log": {"every": 1, "progress": False, "tensorboard": True},
        },
    }  # fmt: skip


def _start(tmp: Path, out: Path, resume: bool = False) -> subprocess.Popen:
    spec = _spec(out)
    spec["train"]["resume"] = resume
    path = tmp / f"spec_{out.name}_{int(resume)}.json"
    path.write_text(json.dumps(spec))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(HERE.parents[1])}
    return subprocess.Popen([sys.executable, str(HERE / "train_tiny.py"), str(path)], env=env, cwd=HERE,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip


def _records(run_dir: Path) -> list[dict]:
    path = run_dir / "metrics.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.is_file() else []


def _trajectory(run_dir: Path) -> dict[int, tuple]:
    """Everything but wall-clock fields, per step."""
    return {
        r["step"]: tuple(sorted((k, v) for k, v in r.items() if not k.startswith(("time/", "throughput/"))))
        for r in _records(run_dir)
    }


def test_sigkill_at_random_step_then_resume_is_bit_identical(tmp_path):
    ref = _start(tmp_path, tmp_path / "ref")
    out, _ = ref.communicate(timeout=240)
    assert ref.returncode == 0, out
    kill_at = random.Random(time.time_ns()).randint(8, 33)
    victim = _start(tmp_path, tmp_path / "victim")
    run_dir = tmp_path / "victim/r"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and victim.poll() is None:
        recs = _records(run_dir) if (run_dir / "metrics.jsonl").is_file() else []
        if recs and recs[-1]["step"] >= kill_at:
            break
        time.sleep(0.005)
    assert victim.poll() is None, f"run finished before the kill at step {kill_at}"
    os.kill(victim.pid, signal.SIGKILL)
    victim.communicate()
    killed_at = _records(run_dir)[-1]["step"]
    assert killed_at < STEPS
    resumed = _start(tmp_path, tmp_path / "victim", resume=True)
    out, _ = resumed.communicate(timeout=240)
    assert resumed.returncode == 0, out
    assert "resumed" in out
    want, got = _trajectory(tmp_path / "ref/r"), _trajectory(run_dir)
    assert sorted(got) == list(range(1, STEPS + 1)), f"killed at step {killed_at}"
    diff = [s for s in want if want[s] != got[s]]
    assert not diff, (
        f"killed at step {killed_at}: steps {diff[:5]} differ, e.g. {dict(want[diff[0]])['loss']} vs {dict(got[diff[0]])['loss']}"
    )
