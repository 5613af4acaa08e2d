"""The franky-sim reaching task (envs/droid_sim): the scripted demonstrator, the success rule, the report; and
(slow) scripts/droid_sim_demo.sh end to end at reduced size."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from deploy.backends.base import RobotState
from deploy.droid import FR3_Q_MAX, FR3_Q_MIN, MAX_JOINT_DELTA, RESET_JOINTS
from deploy.recording import RolloutRecorder
from deploy.runner import StepRecord
from deploy.safety import JointCommand, SafetyConfig
from envs.droid_sim.report import main as report_main
from envs.droid_sim.task import (
    INSTRUCTIONS,
    LEFT,
    RIGHT,
    TARGETS,
    TOLERANCE_RAD,
    ScriptedReachPolicy,
    is_success,
    joint_error,
    target_for,
)
from vla.conventions import DROID_EXTERIOR_IMAGE, DROID_WRIST_IMAGE

ROOT = Path(__file__).parents[2]


def test_targets_are_distinct_and_inside_the_safety_band():
    margin = SafetyConfig().margin
    for q in TARGETS.values():
        assert np.all(q > FR3_Q_MIN + margin) and np.all(q < FR3_Q_MAX - margin)
    assert np.max(np.abs(TARGETS[LEFT] - TARGETS[RIGHT])) > 10 * TOLERANCE_RAD
    assert target_for("  Move to the LEFT target ") is TARGETS[LEFT]
    with pytest.raises(ValueError, match="unknown instruction 'go up'"):
        target_for("go up")


def _batch(q: np.ndarray, task: str) -> dict:
    z = np.zeros((1, 224, 224, 3), np.uint8)
    return {DROID_EXTERIOR_IMAGE: z, DROID_WRIST_IMAGE: z, "observation.state": np.append(q, 0.0)[None].astype(np.float32),
            "task": [task]}  # fmt: skip


@pytest.mark.parametrize("explore", [0.0, 0.15])
@pytest.mark.parametrize("task", INSTRUCTIONS)
def test_scripted_demonstrator_reaches_each_target(task, explore):
    """Executing 8 of every 16 planned actions under DROID semantics (q += 0.2 v) reaches the target within the
    60 steps of an episode, below the robot loop's default speed cap (so the safety filter leaves the
    demonstrations alone); with `explore` the first 8 steps move the base joint at that speed, either way."""
    policy = ScriptedReachPolicy(explore=explore, seed=3)
    firsts = set()
    for _episode in range(4):
        policy.reset()
        q = RESET_JOINTS.copy()
        speeds = []
        for k in range(7):
            chunk = policy.predict_chunk(_batch(q, task))
            assert chunk.shape == (1, 16, 8) and np.all(chunk[..., 7] == 0)
            if k == 0 and explore:
                assert np.allclose(np.abs(chunk[0, :8, 0]), explore) and np.all(chunk[0, :8, 1:7] == 0)
                firsts.add(float(np.sign(chunk[0, 0, 0])))
            for a in chunk[0, :8]:
                speeds.append(np.abs(a[:7]).max() * MAX_JOINT_DELTA * 15)  # rad/s
                q = q + MAX_JOINT_DELTA * a[:7]
        assert is_success(q, task) and joint_error(q, task) < 0.02
        assert not is_success(q, RIGHT if task == LEFT else LEFT)
        assert max(speeds) <= SafetyConfig().speed_cap.min()  # rad/s: under the robot loop's default cap
    assert firsts == ({-1.0, 1.0} if explore else set())  # both directions, whatever the instruction
    noisy = ScriptedReachPolicy(noise=0.03, seed=1).predict_chunk(_batch(RESET_JOINTS, task))
    assert not np.array_equal(noisy, policy.predict_chunk(_batch(RESET_JOINTS, task)))


def _record(root: Path, finals: list[np.ndarray], task: str, flags: list[str]) -> None:
    with RolloutRecorder(root, fps=15, image_size=8) as rec:
        for q in finals:
            for t in range(3):
                state = RobotState(RESET_JOINTS if t < 2 else q, np.zeros(7), 0.0)
                cmd = JointCommand(np.zeros(7), q, 0.0, flags if t == 0 else [])
                img = np.zeros((8, 8, 3), np.uint8)
                step = StepRecord(0.0, state, {DROID_EXTERIOR_IMAGE: img, DROID_WRIST_IMAGE: img}, np.zeros(8), cmd,
                                  False, t, 4.0 + t, 2.0)  # fmt: skip
                rec(step, task)
            rec.end_episode()


def test_report_scores_recorded_trials(tmp_path):
    run = tmp_path / "run"
    near = TARGETS[LEFT] + 0.05
    _record(run / "eval" / "0", [near, TARGETS[RIGHT]], LEFT, ["velocity_capped"])
    _record(run / "eval" / "1", [TARGETS[RIGHT] - 0.09, TARGETS[RIGHT] + 0.2], RIGHT, [])
    (run / "logs").mkdir()
    (run / "logs" / "eval_0.log").write_text(
        "x INFO pion-robot: episode 0: done after 3 steps, 1 queries, flags {}, lateness p99 1.50 ms \n"
        "x INFO pion-robot: episode 1: done after 3 steps, 1 queries, flags {}, lateness p99 7.25 ms \n"
    )
    (run / "timings.json").write_text(json.dumps({"record": 10.0, "train": 20.0, "eval": 5.0}))
    assert report_main([str(run)]) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["trials"] == 4 and summary["successes"] == 2
    assert (
        summary["per_instruction"][LEFT]["successes"] == 1
        and summary["per_instruction"][RIGHT]["successes"] == 1
    )
    lo, hi = summary["wilson95"]
    assert lo == pytest.approx(0.15, abs=0.01) and hi == pytest.approx(0.85, abs=0.01)
    assert summary["flag_steps"]["velocity_capped"] == 2 and summary["episodes_with_flags"] == 2
    assert summary["episode_lateness_p99_ms"]["max"] == 7.25 and summary["rtt_ms"]["max"] == 6.0
    md = (run / "report.md").read_text()
    assert "2/4 = 50%" in md and "record 10 s" in md
    assert report_main([str(tmp_path / "nothing")]) == 2


@pytest.mark.slow
def test_droid_sim_demo_script_end_to_end(tmp_path):
    """The four stages at smoke size: 2 demonstrations per instruction, 60 training steps (past the 50-step warmup), 1 trial each."""
    pytest.importorskip("franky_sim")
    env = {**os.environ, "EPISODES": "2", "TRIALS": "1", "TRAIN_STEPS": "60"}
    run = tmp_path / "run"
    proc = subprocess.run(["bash", str(ROOT / "scripts/droid_sim_demo.sh"), str(run)], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=900)  # fmt: skip
    assert proc.returncode == 0, (proc.stdout[-3000:], proc.stderr[-3000:])
    summary = json.loads((run / "summary.json").read_text())
    assert summary["trials"] == 2 and set(summary["per_instruction"]) == set(INSTRUCTIONS)
    timings = json.loads((run / "timings.json").read_text())
    assert set(timings) == {"record", "train", "eval"}
    info = json.loads((run / "dataset" / "meta" / "info.json").read_text())
    assert info["total_episodes"] == 4 and info["fps"] == 15
    assert (run / "report.md").read_text().startswith("# DROID end to end in franky-sim")
    assert list((run / "train" / "run" / "checkpoints").glob("step_*/pretrained/config.json"))
