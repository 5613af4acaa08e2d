"""The loader reads both public LIBERO layouts (written locally) and serves canonical keys."""

from __future__ import annotations

import numpy as np
import pytest

from envs.datagen import shards
from envs.datagen.merge import dataset_path, merge_shards
from vla.data import LayoutError, detect_layout, get_layout, load_libero_dataset
from vla.data.layouts import ACTION, IMAGE, STATE, WRIST

RES = 32  # the synthetic demos' image size (conftest default)

RUN = {
    "suite": "libero_object",
    "tasks": [0, 1],
    "episodes_per_task": 1,
    "seed": 0,
    "action_noise": 0.0,
    "resolution": RES,
    "layout": "?",
    "command": "test",
}


@pytest.mark.parametrize("layout_name", ["lerobot", "openpi"])
def test_loader_reads_each_layout(tmp_path, make_demo, layout_name):
    layout = get_layout(layout_name)
    demos = [make_demo(0, 6, seed=1), make_demo(1, 4, seed=2)]
    for d in demos:
        shards.write_shard(tmp_path, d.result.task_id, 0, d, layout, RES, use_videos=False)
    merge_shards(tmp_path, RUN | {"layout": layout_name})

    ds = load_libero_dataset(
        "local/test", root=dataset_path(tmp_path), delta_timestamps={ACTION: [0.0, 0.1, 0.2]}
    )
    assert ds.layout.name == layout_name
    assert ds.num_episodes == 2 and len(ds) == 10
    item = ds[5]  # last frame of episode 0: the action window is padded
    assert {IMAGE, WRIST, STATE, ACTION, "action_is_pad", "task"} <= set(item)
    assert tuple(item[IMAGE].shape) == (3, RES, RES) and tuple(item[STATE].shape) == (8,)
    assert tuple(item[ACTION].shape) == (3, 7)
    assert item["action_is_pad"].tolist() == [False, True, True]
    np.testing.assert_allclose(item[STATE].numpy(), demos[0].frames[STATE][5], rtol=1e-6)
    np.testing.assert_allclose(item[ACTION][0].numpy(), demos[0].frames[ACTION][5], rtol=1e-6)
    assert item["task"] == demos[0].task
    assert ds[6]["task"] == demos[1].task


def test_detect_layout_and_errors():
    assert detect_layout(["image", "wrist_image", "state", "actions", "timestamp"]).name == "openpi"
    assert detect_layout([IMAGE, WRIST, STATE, ACTION]).name == "lerobot"
    assert (
        detect_layout([IMAGE, "observation.images.wrist_image", STATE, ACTION, "index"]).name == "community"
    )
    # a dataset with both wrist keys is read as the canonical layout
    assert detect_layout([IMAGE, WRIST, "observation.images.wrist_image", STATE, ACTION]).name == "lerobot"
    with pytest.raises(LayoutError, match="match no LIBERO layout"):
        detect_layout(["image", "state"])
    with pytest.raises(LayoutError, match="valid: lerobot, openpi, community"):
        get_layout("rlds")


def test_loader_rejects_non_dataset(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a LeRobot dataset"):
        load_libero_dataset("local/none", root=tmp_path)
