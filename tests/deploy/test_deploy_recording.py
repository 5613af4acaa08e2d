"""Rollouts recorded as a LeRobotDataset, finalised even when the run is interrupted."""

import numpy as np
import pytest
from conftest import sim_cameras

from deploy.backends.fake import FakeBackend
from deploy.client import PolicyClient
from deploy.policies import ScriptedWavePolicy
from deploy.recording import RolloutRecorder
from deploy.runner import LoopConfig, RobotRunner
from deploy.safety import SafetyConfig

pytest.importorskip("lerobot")


def test_two_episodes_recorded_and_readable_after_interrupt(serve, tmp_path):
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    server = serve(ScriptedWavePolicy())
    root = tmp_path / "rollouts"
    client = PolicyClient(server.endpoint, timeout_s=1, retries=1)
    with client, RolloutRecorder(root, "local/test_rollouts") as rec:
        runner = RobotRunner(
            FakeBackend(), client, sim_cameras(), SafetyConfig(), LoopConfig(max_steps=10), on_step=rec
        )
        runner.run_episode("first")
        rec.end_episode()
        stop_after = {"n": 0}

        def interrupting(step, prompt):  # Ctrl-C arrives during the second episode
            rec(step, prompt)
            stop_after["n"] += 1
            if stop_after["n"] == 4:
                runner.request_stop()

        runner.on_step = interrupting
        res = runner.run_episode("second")
        assert res.status == "stopped" and res.steps == 4
        # no end_episode(): leaving the `with` must save the partial episode and finalise
    ds = LeRobotDataset("local/test_rollouts", root=root)
    assert ds.meta.total_episodes == 2 and ds.meta.total_frames == 14
    item = ds[12]
    assert item["task"] == "second"
    assert tuple(item["observation.images.exterior_image_1_left"].shape) == (3, 224, 224)
    assert item["action"].shape == (8,) and item["action.executed"].shape == (8,)
    np.testing.assert_allclose(
        item["observation.state"][:7].numpy(), item["observation.state.joint_position"].numpy()
    )


def test_recorder_refuses_to_overwrite_an_existing_dataset(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "file").write_text("keep me")
    with pytest.raises(FileExistsError, match="not empty"):
        RolloutRecorder(tmp_path / "x")
    assert (tmp_path / "x" / "file").read_text() == "keep me"
