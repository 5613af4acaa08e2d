"""Every CLI resolves every kind of policy the same way (`vla.policies.load_policy`): pion-rollout, pion-eval
and pion-serve each run with a registered name, a "module:factory" and a served tcp:// address."""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from deploy.server import PolicyServer
from envs.cli import eval as eval_cli
from envs.cli import rollout as rollout_cli
from envs.eval.results import RESULTS_FILE
from vla.policies import (
    HoldStillPolicy,
    PolicyLoadError,
    load_policy,
    register_policy,
    spec_kind,
    unregister_policy,
)

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
FACTORY = "eval_test_policies:hold"  # chunk_len 4


@pytest.fixture(scope="module")
def served():
    with PolicyServer(HoldStillPolicy(chunk_len=4), "tcp://127.0.0.1:*", max_batch=4) as server:
        yield server.endpoint


def _specs(served):
    return {"name": "hold", "factory": FACTORY, "remote": served}


@pytest.mark.parametrize("kind", ["name", "factory", "remote"])
def test_pion_rollout_runs_every_kind_of_policy(served, tmp_path, kind):
    spec = _specs(served)[kind]
    assert spec_kind(spec) == kind
    rollout_cli.main(
        [f"policy={spec}", "max_steps=8", "video=false", f"out_dir={tmp_path}", "init_states=[0]"]
    )
    summary = json.loads((tmp_path / "summary.json").read_text())
    (ep,) = summary["episodes"]
    assert summary["policy"] == spec and summary["policy_id"] == "hold"
    assert ep["steps"] == 8 and not ep["success"] and "error" not in ep
    assert ep["queries"] == (1 if kind == "name" else 2)  # hold: chunk 8; factory and served: chunk 4


@pytest.mark.parametrize("kind", ["name", "factory", "remote"])
def test_pion_eval_runs_every_kind_of_policy(served, tmp_path, kind):
    spec = _specs(served)[kind]
    eval_cli.main(
        [
            f"policy={spec}",
            "suites=[libero_object]",
            "task_ids=[0]",
            "trials_per_task=1",
            "max_steps=8",
            "workers=1",
            "progress=false",
            "plot=false",
            "videos_per_task=0",
            f"out_dir={tmp_path}",
        ]
    )
    (rec,) = [json.loads(line) for line in (tmp_path / RESULTS_FILE).read_text().splitlines()]
    info = json.loads((tmp_path / "run_info.json").read_text())
    assert rec["steps"] == 8 and rec["error"] is None and rec["queries"] == (1 if kind == "name" else 2)
    assert info["policy_placement"] == ("worker" if kind == "name" else "parent")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("kind", ["name", "factory", "remote"])
def test_pion_serve_serves_every_kind_of_policy(served, kind):
    spec = _specs(served)[kind]
    address = f"tcp://127.0.0.1:{_free_port()}"
    env = os.environ | {"PYTHONPATH": os.pathsep.join([str(REPO), str(HERE)])}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "deploy.cli.serve",
            f"policy={spec}",
            f"bind={address}",
            "action_space=libero_osc_delta",
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        policy, deadline = None, time.monotonic() + 60
        while policy is None and time.monotonic() < deadline and proc.poll() is None:
            try:
                policy = load_policy(address, action_space="libero_osc_delta", timeout_s=2, retries=1)
            except ConnectionError:
                time.sleep(0.2)
        assert policy is not None, proc.stdout.read() if proc.poll() is not None else "server never answered"
        batch = {"observation.state": np.zeros((2, 8), np.float32), "task": ["a", "b"]}
        chunk = policy.predict_chunk(batch)
        assert chunk.shape == (2, 8 if kind == "name" else 4, 7) and np.all(chunk[..., -1] == -1)
        policy.close()
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_registered_names_and_errors():
    register_policy("test_hold4", FACTORY, "for this test")
    try:
        assert load_policy("test_hold4").spec.chunk_len == 4
        with pytest.raises(ValueError, match="already registered"):
            register_policy("test_hold4", FACTORY)
    finally:
        unregister_policy("test_hold4")
    with pytest.raises(PolicyLoadError, match="unknown policy 'test_hold4'"):
        load_policy("test_hold4")
    with pytest.raises(PolicyLoadError, match="pass env="):
        load_policy("expert")
    with pytest.raises(PolicyLoadError, match="does not take these arguments"):
        load_policy("hold", wings=2)


def test_a_checkpoint_directory_is_recognised(tmp_path):
    with pytest.raises(PolicyLoadError, match="no config.json"):
        spec_kind(str(tmp_path))
    (tmp_path / "config.json").write_text("{}")
    assert spec_kind(str(tmp_path)) == "checkpoint"


def test_evaluate_takes_a_policy_object_like_the_trainer_hook(tmp_path):
    """The trainer's eval hook hands `evaluate` a built policy: it is shared by the workers from the parent."""
    from envs.eval import EvalRun, build_episodes, evaluate

    summary = evaluate(
        EvalRun(
            out_dir=tmp_path,
            policy=HoldStillPolicy(chunk_len=4),
            workers=1,
            max_steps=8,
            progress=False,
            plot=False,
            videos_per_task=0,
        ),
        build_episodes(["libero_object"], [0], 1, [7]),
    )
    info = json.loads((tmp_path / "run_info.json").read_text())
    assert summary["overall"]["episodes"] == 1 and summary["overall"]["errors"] == 0
    assert (
        info["policy"] == "hold" and info["policy_placement"] == "parent" and info["mean_policy_batch"] == 1
    )
