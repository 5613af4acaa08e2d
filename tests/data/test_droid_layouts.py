"""DROID-format LeRobot datasets: the keys deploy/recording.py writes, lerobot's droid_1.0.1 split columns and
openpi's conversion all load as canonical DROID samples (8-D state, 8-D joint-velocity + gripper action, exterior +
wrist images); a DROID dataset with missing keys is refused in one line naming them."""

from __future__ import annotations

import numpy as np
import pytest

from deploy.backends.base import RobotState
from deploy.recording import RolloutRecorder
from deploy.runner import StepRecord
from deploy.safety import JointCommand
from vla.conventions import DROID_EXTERIOR_IMAGE, DROID_WRIST_IMAGE
from vla.data import LayoutError, compute_stats, detect_layout, get_layout, open_chunk_dataset
from vla.data.layouts import ACTION, STATE

RES = 16
TASKS = ["move to the left target", "move to the right target"]


def _episode(length: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "q": rng.uniform(-1, 1, (length, 7)),
        "gripper": rng.uniform(0, 1, (length, 1)),
        "velocity": rng.uniform(-1, 1, (length, 7)),
        "ext": rng.integers(0, 256, (length, RES, RES, 3), dtype=np.uint8),
        "wrist": rng.integers(0, 256, (length, RES, RES, 3), dtype=np.uint8),
    }


def _record_pion(root, episodes: list[dict]) -> None:
    """Through deploy's own recorder, exactly as pion-robot writes a rollout."""
    with RolloutRecorder(root, fps=15, image_size=RES) as rec:
        for i, ep in enumerate(episodes):
            for t in range(len(ep["q"])):
                state = RobotState(ep["q"][t], np.zeros(7), float(ep["gripper"][t, 0]))
                action = np.concatenate([ep["velocity"][t], ep["gripper"][t]])
                cmd = JointCommand(ep["velocity"][t] * 0.5, ep["q"][t], float(ep["gripper"][t, 0]), [])
                images = {DROID_EXTERIOR_IMAGE: ep["ext"][t], DROID_WRIST_IMAGE: ep["wrist"][t]}
                rec(StepRecord(0.0, state, images, action, cmd, False, t, 1.0, 0.5), TASKS[i % 2])
            rec.end_episode()


def _write_layout(root, layout_name: str, episodes: list[dict], drop: tuple[str, ...] = ()) -> None:
    """lerobot_droid / openpi_droid columns (state and action split as those datasets store them)."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    layout = get_layout(layout_name)
    features = {k: v for k, v in layout.features(RES, use_videos=False).items() if k not in drop}
    ds = LeRobotDataset.create("local/droid", fps=15, features=features, root=root, use_videos=False)
    state_cols, action_cols = layout.native(STATE), layout.native(ACTION)
    for i, ep in enumerate(episodes):
        for t in range(len(ep["q"])):
            state = np.concatenate([ep["q"][t], ep["gripper"][t]]).astype(np.float32)
            action = np.concatenate([ep["velocity"][t], ep["gripper"][t]]).astype(np.float32)
            frame = {
                layout.keys[DROID_EXTERIOR_IMAGE]: ep["ext"][t],
                layout.keys[DROID_WRIST_IMAGE]: ep["wrist"][t],
            }
            for cols, vec in ((state_cols, state), (action_cols, action)):
                start = 0
                for c in cols:
                    width = layout.part_dims.get(c, len(vec))
                    frame[c] = vec[start : start + width]
                    start += width
            ds.add_frame({k: v for k, v in frame.items() if k not in drop} | {"task": TASKS[i % 2]})
        ds.save_episode()
    ds.finalize()


@pytest.mark.parametrize("layout_name", ["pion_droid", "lerobot_droid", "openpi_droid"])
def test_droid_layout_loads_canonical_chunks(tmp_path, layout_name):
    episodes = [_episode(6, seed=1), _episode(5, seed=2)]
    root = tmp_path / "ds"
    if layout_name == "pion_droid":
        _record_pion(root, episodes)
    else:
        _write_layout(root, layout_name, episodes)
    fast = open_chunk_dataset(root=root, chunk_len=4, tail="pad")
    slow = open_chunk_dataset(root=root, chunk_len=4, tail="pad", reader="lerobot")
    assert fast.libero.layout.name == layout_name and fast.num_episodes == 2 and len(fast) == 11
    for ds in (fast, slow):
        item = ds[4]  # frame 4 of episode 0 (length 6): actions 4, 5, then padding
        assert {DROID_EXTERIOR_IMAGE, DROID_WRIST_IMAGE, STATE, ACTION, "action_is_pad", "task"} <= set(item)
        assert tuple(item[DROID_EXTERIOR_IMAGE].shape) == (RES, RES, 3)
        np.testing.assert_array_equal(item[DROID_WRIST_IMAGE].numpy(), episodes[0]["wrist"][4])
        np.testing.assert_allclose(item[STATE].numpy()[:7], episodes[0]["q"][4], rtol=1e-6)
        np.testing.assert_allclose(item[STATE].numpy()[7], episodes[0]["gripper"][4, 0], rtol=1e-6)
        assert tuple(item[ACTION].shape) == (4, 8)
        np.testing.assert_allclose(item[ACTION][1, :7].numpy(), episodes[0]["velocity"][5], rtol=1e-6)
        np.testing.assert_allclose(item[ACTION][1, 7].numpy(), episodes[0]["gripper"][5, 0], rtol=1e-6)
        assert item["action_is_pad"].tolist() == [False, False, True, True]
        assert item["task"] == TASKS[0] and ds[7]["task"] == TASKS[1]
    stats = compute_stats(fast, cache=False)
    assert len(stats[STATE]["q01"]) == 8 and len(stats[ACTION]["q99"]) == 8
    all_v = np.concatenate([e["velocity"] for e in episodes])
    np.testing.assert_allclose(stats[ACTION]["max"][:7], all_v.max(0), rtol=1e-6)


def test_detect_droid_layouts():
    assert (
        detect_layout(get_layout("pion_droid").columns + ["safety.flags", "action.executed"]).name
        == "pion_droid"
    )
    assert detect_layout(get_layout("lerobot_droid").columns + ["observation.state"]).name == "lerobot_droid"
    assert detect_layout(get_layout("openpi_droid").columns).name == "openpi_droid"


def test_droid_dataset_with_missing_keys_names_them(tmp_path):
    cols = [c for c in get_layout("lerobot_droid").columns if c != "action.joint_velocity"]
    with pytest.raises(LayoutError) as err:
        detect_layout(cols + ["observation.images.exterior_2_left"], "dataset /data/droid")
    msg = str(err.value)
    assert "\n" not in msg and "DROID dataset /data/droid lacks ['action.joint_velocity']" in msg
    assert "'lerobot_droid'" in msg
    # on disk, through the loader: an openpi-style dataset without its wrist camera
    _write_layout(tmp_path / "ds", "openpi_droid", [_episode(5, seed=3)], drop=("wrist_image_left",))
    with pytest.raises(LayoutError, match=r"lacks \['wrist_image_left'\] of layout 'openpi_droid'"):
        open_chunk_dataset(root=tmp_path / "ds", chunk_len=2)


def test_droid_action_width_is_checked(tmp_path):
    """A DROID layout whose action column is 7-D (e.g. the flat RLDS `action`) is refused, naming the width."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    from vla.data import DatasetError

    features = get_layout("pion_droid").features(RES, use_videos=False)
    features["action"]["shape"], features["action"]["names"] = (7,), None
    ds = LeRobotDataset.create(
        "local/droid", fps=15, features=features, root=tmp_path / "ds", use_videos=False
    )
    ep = _episode(3, seed=4)
    for t in range(3):
        ds.add_frame({DROID_EXTERIOR_IMAGE: ep["ext"][t], DROID_WRIST_IMAGE: ep["wrist"][t],
                      STATE: np.concatenate([ep["q"][t], ep["gripper"][t]]).astype(np.float32),
                      ACTION: ep["velocity"][t].astype(np.float32), "task": TASKS[0]})  # fmt: skip
    ds.save_episode()
    ds.finalize()
    with pytest.raises(DatasetError, match=r"expected \(8,\) \(the DROID 8-D action\)"):
        open_chunk_dataset(root=tmp_path / "ds", chunk_len=2)


@pytest.mark.slow
def test_pion_train_names_missing_droid_keys(tmp_path):
    """pion-train on a DROID dataset without its wrist camera: exit 2, one line naming the missing column."""
    import subprocess
    import sys
    from pathlib import Path

    _write_layout(tmp_path / "ds", "openpi_droid", [_episode(5, seed=5)], drop=("wrist_image_left",))
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "pion-train"), "+experiment=droid_sim_train", f"data.root={tmp_path / 'ds'}",
         "data.layout=null", f"out_dir={tmp_path / 'out'}", "steps=1"],
        capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-2000:]
    assert "lacks ['wrist_image_left'] of layout 'openpi_droid'" in lines[0]
