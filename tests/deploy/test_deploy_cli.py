"""The CLIs: --help, and pion-serve + pion-robot (fake arm, recording) as real processes on loopback."""

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}


# hydra's run dir (its log file) goes to a temp dir: leave no outputs/<date> dirs in the repository
NO_RUN_DIR = ["hydra.output_subdir=null", f"hydra.run.dir={tempfile.gettempdir()}/pion-deploy-cli-test"]


def _cli(module: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    extra = NO_RUN_DIR if module != "deploy.keys" and "--help" not in args else []
    return subprocess.run(
        [sys.executable, "-m", module, *args, *extra],
        cwd=REPO,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.parametrize(
    "module, expect",
    [("deploy.cli.serve", "max_batch"), ("deploy.cli.robot", "dry_run"), ("deploy.keys", "key_secret")],
)
def test_every_cli_answers_help(module, expect):
    out = _cli(module, "--help")
    assert out.returncode == 0 and expect in out.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_and_robot_processes_run_an_episode_and_record_it(tmp_path):
    port = _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "deploy.cli.serve",
            f"bind=tcp://127.0.0.1:{port}",
            "policy=hold",
            "+policy_kwargs.image_size=96",  # not DROID's 224: the recording follows the policy's size
            "action_space=droid_joint_velocity",
            *NO_RUN_DIR,
        ],
        cwd=REPO,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        robot = _cli(
            "deploy.cli.robot",
            "prompt=hold still",
            "robot.backend=fake",
            "loop.max_steps=12",
            f"policy=tcp://127.0.0.1:{port}",
            "server.timeout_s=5",
            f"record.root={tmp_path / 'rec'}",
            "--arm",
        )
        assert robot.returncode == 0, robot.stdout + robot.stderr
        log = robot.stdout + robot.stderr
        assert "LIVE ARM" in log and "done after 12 steps" in log and "recording finalised" in log
        info = json.loads((tmp_path / "rec" / "meta" / "info.json").read_text())
        assert info["features"]["observation.images.exterior_image_1_left"]["shape"] == [96, 96, 3]
        assert info["total_frames"] == 12
    finally:
        os.killpg(server.pid, signal.SIGINT)  # graceful shutdown path
        try:
            rc = server.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            raise
    assert rc == 0, server.stdout.read()


def test_keygen_via_pion_serve(tmp_path):
    out = _cli("deploy.cli.serve", f"keygen={tmp_path / 'k'}")
    assert out.returncode == 0, out.stderr
    assert {p.name for p in (tmp_path / "k").iterdir()} == {
        "server.key",
        "server.key_secret",
        "client.key",
        "client.key_secret",
    }
