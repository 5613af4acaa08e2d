"""The video backend is chosen once, quietly: no torchcodec traceback in training, generation or recording."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from dataset_factory import synthetic_demo

from vla.data import open_chunk_dataset
from vla.data import video as video_mod
from vla.data.video import VideoBackendError, video_backend

REPO = Path(__file__).resolve().parents[2]


def test_choice_is_quiet_and_overridable(monkeypatch, caplog):
    monkeypatch.delenv(video_mod.ENV_VAR, raising=False)
    with caplog.at_level(logging.DEBUG):
        chosen = video_backend()
    assert chosen == ("torchcodec" if video_mod._torchcodec_loads()[0] else "pyav")
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    monkeypatch.setenv(video_mod.ENV_VAR, "pyav")
    assert video_backend() == "pyav"
    monkeypatch.setenv(video_mod.ENV_VAR, "ffmpeg-cli")
    with pytest.raises(VideoBackendError, match="unknown video backend 'ffmpeg-cli'"):
        video_backend()
    if not video_mod._torchcodec_loads()[0]:  # this machine has no FFmpeg libraries: forcing it explains
        with pytest.raises(VideoBackendError, match="install FFmpeg shared libraries"):
            video_backend("torchcodec")


def test_training_generation_and_recording_never_ask_lerobot_to_guess(video_dataset, tmp_path, monkeypatch):
    """lerobot's own guess (the one that logs the traceback) must not run on any of our paths."""
    import lerobot.datasets.lerobot_dataset as lds

    from deploy.recording import RolloutRecorder
    from envs.datagen import shards
    from vla.data.layouts import get_layout

    def guess():
        raise AssertionError("lerobot.get_safe_default_video_backend was called")

    monkeypatch.setattr(lds, "get_safe_default_video_backend", guess)
    ds = open_chunk_dataset(root=video_dataset, chunk_len=4)  # training
    assert ds.libero.base._video_backend == video_backend()
    assert ds[0]["observation.images.image"].shape == (32, 32, 3)
    demo = synthetic_demo(0, 5, seed=0, res=32)
    shards.write_shard(
        tmp_path / "gen", 0, 0, demo, get_layout("lerobot"), 32, use_videos=False
    )  # pion-gen-demos
    with RolloutRecorder(tmp_path / "rec", use_videos=False) as rec:  # pion-robot recording
        assert rec.dataset._video_backend == video_backend()


_SCRIPT = """
import logging, sys
logging.basicConfig(level=logging.INFO, stream=sys.stderr)
root, mode = sys.argv[1], sys.argv[2]
if mode == "ours":
    from vla.data import open_chunk_dataset
    ds = open_chunk_dataset(root=root, chunk_len=4)
    for i in ds.valid_starts[:3]:
        ds[int(i)]
else:  # lerobot left to choose by itself
    from lerobot.datasets.lerobot_dataset import LeRobotDataset
    LeRobotDataset("local/test", root=root)[0]
print("ok")
"""


def _run(root: Path, mode: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    env.pop(video_mod.ENV_VAR, None)
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_SCRIPT), str(root), mode],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=REPO,
    )


def test_no_traceback_on_stderr_when_loading(video_dataset):
    ours = _run(video_dataset, "ours")
    assert ours.returncode == 0 and ours.stdout.strip() == "ok", ours.stderr[-2000:]
    for marker in ("Traceback", "libtorchcodec", "cannot be loaded", "Falling back"):
        assert marker not in ours.stderr, ours.stderr[-2000:]


@pytest.mark.slow
def test_control_lerobots_own_choice_prints_the_loader_error(video_dataset):
    """The markers above are the right ones: left to itself, lerobot prints them on a machine without FFmpeg."""
    if video_mod._torchcodec_loads()[0]:
        pytest.skip("torchcodec loads on this machine: lerobot has nothing to complain about")
    theirs = _run(video_dataset, "lerobot")
    assert theirs.returncode == 0
    assert "libtorchcodec" in theirs.stderr and "Falling back to 'pyav'" in theirs.stderr
