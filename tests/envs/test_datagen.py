"""End-to-end demonstration generation: a LeRobotDataset lerobot can load; resume; a killed run stays loadable."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from envs.datagen import shards
from envs.datagen.generate import GenConfig, generate
from envs.datagen.merge import dataset_path
from envs.datagen.noop import keep_mask

RES = 64  # rendering cost barely depends on resolution; small files keep the test fast
REPO = Path(__file__).resolve().parents[2]


def _load(out: Path):
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    return LeRobotDataset("local/pion-libero-demos", root=dataset_path(out))


def test_generate_two_episodes_and_reload_with_lerobot(tmp_path):
    cfg = GenConfig(
        suite="libero_object",
        tasks=[0],
        episodes_per_task=2,
        out=tmp_path,
        resolution=RES,
        workers=1,
        merge_every=1,
        progress=False,
        command="test",
    )
    generate(cfg)
    ds = _load(tmp_path)
    assert ds.meta.total_episodes == 2 and ds.fps == 10
    feats = ds.meta.features
    assert tuple(feats["observation.images.image"]["shape"]) == (RES, RES, 3)
    assert feats["observation.images.image2"]["dtype"] == "video"
    assert tuple(feats["observation.state"]["shape"]) == (8,) and tuple(feats["action"]["shape"]) == (7,)
    item = ds[0]
    assert tuple(item["observation.images.image"].shape) == (3, RES, RES)
    assert item["task"] == "pick up the alphabet soup and place it in the basket"
    actions = np.stack([ds[i]["action"].numpy() for i in range(len(ds))])
    assert keep_mask(actions).all(), "a no-op step was recorded"
    assert set(np.unique(actions[:, 6])) <= {-1.0, 1.0}
    stats = json.loads((dataset_path(tmp_path) / "meta" / "stats.json").read_text())
    assert len(stats["action"]["mean"]) == 7 and len(stats["observation.state"]["std"]) == 8
    card = (dataset_path(tmp_path) / "README.md").read_text()
    assert "no-op" in card and "libero_object" in card
    init_states = sorted(shards.shard_info(s)["init_state"] for s in shards.successful_shards(tmp_path))
    assert len(set(init_states)) == 2

    before = shards.scan(tmp_path)
    generate(cfg)  # a finished run re-run: nothing new, nothing duplicated
    assert shards.scan(tmp_path) == before
    assert _load(tmp_path).meta.total_episodes == 2


@pytest.mark.slow
def test_killed_run_leaves_a_loadable_dataset_and_resumes(tmp_path):
    cmd = [
        sys.executable,
        "-m",
        "envs.cli.gen_demos",
        "tasks=[1]",
        "episodes_per_task=3",
        f"resolution={RES}",
        "workers=1",
        "merge_every=1",
        "progress=false",
        f"out={tmp_path}",
        "hydra.run.dir=" + str(tmp_path / "hydra"),
    ]
    env = os.environ | {"PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 240
    try:
        while time.time() < deadline and not (dataset_path(tmp_path) / "meta" / "info.json").is_file():
            time.sleep(0.5)
        time.sleep(3)  # let it get into the next episode
        assert proc.poll() is None, "the run finished before it could be killed"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    killed = _load(tmp_path)
    assert 1 <= killed.meta.total_episodes < 3
    assert killed[len(killed) - 1]["action"].shape == (7,)  # the last frame of a finished episode reads

    subprocess.run(cmd, cwd=REPO, env=env, check=True, capture_output=True, timeout=400)
    done = _load(tmp_path)
    assert done.meta.total_episodes == 3
    infos = [shards.shard_info(s) for s in shards.successful_shards(tmp_path)]
    assert len({i["init_state"] for i in infos}) == 3  # no episode generated twice


@pytest.mark.slow
def test_two_workers_give_the_same_dataset_as_one(tmp_path):
    def actions(out: Path, workers: int) -> list[np.ndarray]:
        cfg = GenConfig(
            suite="libero_object",
            tasks=[2, 3],
            episodes_per_task=1,
            out=out,
            resolution=RES,
            workers=workers,
            progress=False,
            seed=5,
        )
        generate(cfg)
        ds = _load(out)
        return [ds[i]["action"].numpy() for i in range(len(ds))]

    parallel, serial = actions(tmp_path / "two", 2), actions(tmp_path / "one", 1)
    assert len(parallel) == len(serial) > 0
    np.testing.assert_array_equal(np.stack(parallel), np.stack(serial))
