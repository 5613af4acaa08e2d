"""Checkpoints declare their action space: a DROID flow-matching checkpoint (configs/model/flow_matching_droid_cpu.yaml)
is accepted by pion-serve / pion-robot and refused by LIBERO rollouts and the LIBERO eval harness, and a LIBERO
checkpoint the other way round; every refusal happens before any motion and names both spaces."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from deploy.backends.fake import FakeBackend
from deploy.cameras import SimCamera
from deploy.droid import EXTERIOR_IMAGE, WRIST_IMAGE, check_compatible
from deploy.runner import LoopConfig, RobotRunner
from deploy.safety import SafetyConfig
from vla.conventions import DROID_JOINT_VELOCITY, LIBERO_OSC_DELTA, ConventionError, check_fits
from vla.models.checkpoint import init_checkpoint
from vla.policies import load_policy

ROOT = Path(__file__).parents[2]
BIN = Path(sys.executable).parent
BOTH = rf"{DROID_JOINT_VELOCITY}.*{LIBERO_OSC_DELTA}|{LIBERO_OSC_DELTA}.*{DROID_JOINT_VELOCITY}"


@pytest.fixture(scope="module")
def droid_ckpt(tmp_path_factory) -> Path:
    return init_checkpoint(
        ROOT / "configs/model/flow_matching_droid_cpu.yaml", tmp_path_factory.mktemp("droid")
    )


@pytest.fixture(scope="module")
def libero_ckpt(tmp_path_factory) -> Path:
    return init_checkpoint(ROOT / "configs/model/flow_matching_cpu.yaml", tmp_path_factory.mktemp("libero"))


def test_droid_checkpoint_declares_droid_joint_velocity(droid_ckpt):
    policy = load_policy(str(droid_ckpt), action_space=DROID_JOINT_VELOCITY)
    spec = policy.spec
    assert spec.action_space == DROID_JOINT_VELOCITY and spec.gripper_convention == "close_position"
    assert spec.control_hz == 15.0 and spec.chunk_len == 16 and spec.n_action_steps == 8
    assert (spec.action_dim, spec.state_dim) == (8, 8)
    assert set(spec.image_shapes) == {EXTERIOR_IMAGE, WRIST_IMAGE}
    check_compatible(spec, open_loop_steps=8)  # the robot loop's own check
    rng = np.random.default_rng(0)
    batch = {k: rng.integers(0, 256, (1, *s), dtype=np.uint8) for k, s in spec.image_shapes.items()}
    batch |= {
        "observation.state": rng.uniform(-1, 1, (1, 8)).astype(np.float32),
        "task": ["move to the left target"],
    }
    chunk = policy.predict_chunk(batch)
    assert chunk.shape == (1, 16, 8) and chunk.dtype == np.float32 and np.isfinite(chunk).all()


def test_robot_loop_runs_droid_checkpoint(droid_ckpt):
    """pion-robot's path (local policy, fake arm, dry run): connect accepts it, steps run, nothing moves."""
    policy = load_policy(str(droid_ckpt), action_space=DROID_JOINT_VELOCITY)
    cams = {EXTERIOR_IMAGE: SimCamera("ext", 64, 64, 3), WRIST_IMAGE: SimCamera("wrist", 64, 64, 3)}
    backend = FakeBackend()
    runner = RobotRunner(backend, policy, cams, SafetyConfig(), LoopConfig(max_steps=3, dry_run=True))
    runner.connect()
    res = runner.run_episode("move to the left target")
    assert res.status == "done" and res.steps == 3 and res.queries == 1
    assert backend.commands == []


def test_libero_consumers_refuse_droid_checkpoint(droid_ckpt, tmp_path):
    with pytest.raises(ConventionError, match=BOTH):
        load_policy(str(droid_ckpt), action_space=LIBERO_OSC_DELTA)  # pion-rollout / pion-eval workers
    spec = load_policy(str(droid_ckpt)).spec
    with pytest.raises(ConventionError, match=BOTH):
        check_fits(spec, LIBERO_OSC_DELTA, where="LIBERO libero_object/0")  # envs.rollout's check
    from envs.eval import EvalRun, build_episodes, evaluate

    episodes = build_episodes(["libero_object"], [0], 1, [7])
    with pytest.raises(ConventionError, match=BOTH):  # the LIBERO harness (pion-eval, pion-train's eval hook)
        evaluate(EvalRun(out_dir=str(tmp_path / "eval"), policy=str(droid_ckpt), workers=1), episodes)
    results = tmp_path / "eval" / "episodes.jsonl"
    assert not results.exists() or results.read_text().strip() == ""  # refused before any episode ran


def test_droid_consumers_refuse_libero_checkpoint(libero_ckpt):
    spec = load_policy(str(libero_ckpt), action_space=LIBERO_OSC_DELTA).spec
    assert spec.action_space == LIBERO_OSC_DELTA and spec.gripper_convention == "libero_raw"
    with pytest.raises(ConventionError, match=BOTH):
        load_policy(str(libero_ckpt), action_space=DROID_JOINT_VELOCITY)  # pion-robot's load_robot_policy
    with pytest.raises(ConventionError, match=BOTH):
        check_compatible(spec, open_loop_steps=8)  # RobotRunner.connect, before the first step
    backend = FakeBackend()
    cams = {EXTERIOR_IMAGE: SimCamera("ext", 64, 64, 3), WRIST_IMAGE: SimCamera("wrist", 64, 64, 3)}
    runner = RobotRunner(
        backend, load_policy(str(libero_ckpt)), cams, SafetyConfig(), LoopConfig(dry_run=False)
    )
    with pytest.raises(ConventionError, match=BOTH):
        runner.run_episode("move to the left target")
    assert backend.commands == []


def test_pion_serve_refuses_libero_checkpoint_for_droid(libero_ckpt):
    proc = subprocess.run(
        [str(BIN / "pion-serve"), f"policy={libero_ckpt}", "action_space=droid_joint_velocity",
         "bind=tcp://127.0.0.1:1"],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and "libero_osc_delta" in lines[0] and "droid_joint_velocity" in lines[0], lines
