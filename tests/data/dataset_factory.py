"""Synthetic LIBERO-like demonstrations and tiny LeRobot datasets (no simulator) for the data tests."""

from __future__ import annotations

import numpy as np

from envs.datagen.record import Demo
from envs.experts.runner import EpisodeResult
from vla.data.layouts import ACTION, IMAGE, STATE, WRIST


def synthetic_demo(task_id: int, length: int, seed: int, res: int = 32) -> Demo:
    rng = np.random.default_rng(seed)
    frames = {
        IMAGE: rng.integers(0, 256, (length, res, res, 3), dtype=np.uint8),
        WRIST: rng.integers(0, 256, (length, res, res, 3), dtype=np.uint8),
        STATE: rng.normal(size=(length, 8)).astype(np.float32),
        ACTION: np.clip(rng.normal(size=(length, 7)), -1, 1).astype(np.float32),
    }
    result = EpisodeResult("libero_object", task_id, seed, True, length, "hold")
    return Demo(f"pick up object {task_id} and place it in the basket", frames, result, dropped_noops=0)


def write_dataset(
    root,
    lengths: list[int],
    *,
    layout: str = "lerobot",
    use_videos: bool = False,
    res: int = 16,
    fps: int = 10,
    state_dim: int = 8,
    seed: int = 0,
) -> list:
    """A finalized LeRobot dataset with one synthetic episode per entry of `lengths` (task i % 2); returns the demos.

    PNG frames (use_videos=False) are lossless, so tests can compare pixels exactly.
    """
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    from vla.data.layouts import get_layout
    from vla.data.video import video_backend

    lay = get_layout(layout)
    features = lay.features(res, use_videos)
    if state_dim != 8:
        features[lay.keys[STATE]] = {"dtype": "float32", "shape": (state_dim,), "names": None}
    ds = LeRobotDataset.create(
        repo_id="local/test",
        fps=fps,
        features=features,
        root=root,
        robot_type="panda",
        use_videos=use_videos,
        video_backend=video_backend(),
    )
    demos = []
    for i, length in enumerate(lengths):
        demo = synthetic_demo(i % 2, length, seed=seed + i, res=res)
        if state_dim != 8:
            demo.frames[STATE] = np.zeros((length, state_dim), np.float32)
        for t in range(length):
            ds.add_frame({lay.keys[k]: demo.frames[k][t] for k in lay.keys} | {"task": demo.task})
        ds.save_episode()
        demos.append(demo)
    ds.finalize()
    return demos


LENGTHS = [12, 3, 9, 10]  # episode 1 is shorter than the default chunk
