"""The main job's pieces (envs/demo.py): held-out init states, config checks, the report; end to end in slow."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from envs.demo import DemoConfig, held_out_init_states, write_report


def test_held_out_init_states_exclude_every_attempted_one():
    used = [0, 1, 2, 5, 7, 49]
    held = held_out_init_states(used, 10)
    assert held == [3, 4, 6, 8, 9, 10, 11, 12, 13, 14]
    assert not set(held) & set(used)


def test_too_few_held_out_init_states_is_a_clear_error():
    with pytest.raises(ValueError, match="only 5 init states are held out"):
        held_out_init_states(list(range(45)), 10)


def test_unknown_demo_key_is_refused():
    with pytest.raises(ValueError, match="unknown demo keys"):
        DemoConfig.from_dict({"demos_per_tsk": 3})
    assert DemoConfig.from_dict({"task_ids": ["2"]}).task_ids == [2]


def test_dataset_dir_names_every_setting_that_changes_the_data(tmp_path):
    a = DemoConfig(cache_dir=str(tmp_path))
    b = DemoConfig(cache_dir=str(tmp_path), resolution=256)
    c = DemoConfig(cache_dir=str(tmp_path), demos_per_task=20)
    assert len({a.dataset_dir, b.dataset_dir, c.dataset_dir}) == 3


def test_report_states_success_ci_target_and_prefers_a_success_video(tmp_path):
    run = tmp_path / "run"
    videos = run / "eval_heldout" / "videos"
    videos.mkdir(parents=True)
    (videos / "libero_object_0_5_s7_failure.mp4").write_bytes(b"f")
    (videos / "libero_object_0_7_s7_success.mp4").write_bytes(b"s")
    (run / "metrics.jsonl").write_text(
        "\n".join(json.dumps({"step": s, "loss": 1.0 / s}) for s in range(1, 20))
    )
    summary = {"overall": {"successes": 8, "episodes": 10, "ci95": [0.49, 0.94]}}
    cfg = DemoConfig(cache_dir=str(tmp_path))
    train_cfg = {"model": {"name": "vla_adapter"}, "optim": {"preset": "adamw", "lr": 5e-4}, "steps": 19,
                 "batch_size": 4, "schedule": {"name": "cosine"}}  # fmt: skip
    report = write_report(run, cfg, train_cfg, summary, {"training": 60.0}, {0: list(range(40))})
    text = report.read_text()
    assert "8/10 = 80%" in text and "49–94%" in text and "**met**" in text
    assert "[40, 41, 42, 43, 44, 45, 46, 47, 48, 49]" in text  # the held-out init states are named
    assert (run / "rollout.mp4").read_bytes() == b"s"
    assert (run / "loss.png").stat().st_size > 1000


@pytest.mark.slow
def test_demo_end_to_end_tiny(tmp_path):
    """Demos (2 episodes) -> 20 updates -> 2 held-out episodes -> report.md, through the real CLI."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", MUJOCO_GL=os.environ.get("MUJOCO_GL", "egl"))
    cmd = [
        str(Path(sys.executable).parent / "pion-train"), "+experiment=demo", "steps=20", "schedule.warmup_steps=2",
        "batch_size=8", "checkpoint.every=0", "spectral.every=10", "demo.demos_per_task=2",
        "demo.eval_trials_per_task=2", f"demo.cache_dir={tmp_path / 'cache'}", f"out_dir={tmp_path / 'out'}",
    ]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, proc.stderr[-3000:]
    reports = list((tmp_path / "out").glob("*/report.md"))
    assert len(reports) == 1
    text = reports[0].read_text()
    assert "/2 = " in text and "Wilson 95% CI" in text
