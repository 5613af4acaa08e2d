"""Record robot rollouts as a LeRobotDataset with DROID-style keys.

Per step: both camera images (the RGB frames the policy saw, at its image size; DROID's is 224x224), joint and gripper position,
the raw policy action (8) and the executed command (joint velocity 7 + binarised gripper 1), the
safety-filter flags as a bitmask, and link timing. `finalize()` must run even on Ctrl-C, or the
dataset is invalid: use the recorder as a context manager.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from deploy.droid import EXTERIOR_IMAGE, WRIST_IMAGE
from deploy.runner import StepRecord

log = logging.getLogger(__name__)

FLAG_BITS = ["rescaled", "position_clamped", "velocity_capped", "stop_distance_capped", "workspace_hold"]


def droid_features(image_size: int = 224) -> dict:
    img = {"dtype": "image", "shape": (image_size, image_size, 3), "names": ["height", "width", "channel"]}
    vec = lambda n, names=None: {"dtype": "float32", "shape": (n,), "names": names}  # noqa: E731
    return {
        "observation.images.exterior_image_1_left": img,
        "observation.images.wrist_image_left": img,
        "observation.state.joint_position": vec(7),
        "observation.state.gripper_position": vec(1),
        "observation.state": vec(8),
        "action": vec(8),  # raw policy action: joint velocity (7, normalised) + gripper position
        "action.executed": vec(8),  # commanded joint velocity (rad/s, after safety filter) + gripper 0/1
        "safety.flags": {"dtype": "int64", "shape": (1,), "names": None},
        "link.rtt_ms": vec(1),
        "link.infer_ms": vec(1),
    }


class RolloutRecorder:
    def __init__(
        self,
        root: str | Path,
        repo_id: str = "local/pion_rollouts",
        fps: int = 15,
        image_size: int = 224,
        use_videos: bool = False,
    ):
        from lerobot.datasets.lerobot_dataset import LeRobotDataset

        from vla.data.video import video_backend

        root = Path(root)
        if root.exists() and any(root.iterdir()):
            raise FileExistsError(f"recording root {root} exists and is not empty; choose a new directory")
        self.dataset = LeRobotDataset.create(
            repo_id=repo_id,
            fps=fps,
            features=droid_features(image_size),
            root=root,
            robot_type="fr3",
            use_videos=use_videos,
            video_backend=video_backend(),  # chosen quietly once (no torchcodec traceback without FFmpeg)
        )
        self.frames_in_episode = 0
        self.episodes = 0
        self._finalized = False

    def __call__(self, rec: StepRecord, prompt: str) -> None:
        state = np.concatenate([rec.state.q, [rec.state.gripper]]).astype(np.float32)
        executed = np.concatenate([rec.command.velocity, [float(rec.gripper_closed)]]).astype(np.float32)
        flags = sum(1 << FLAG_BITS.index(f) for f in rec.command.flags if f in FLAG_BITS)
        self.dataset.add_frame(
            {
                "observation.images.exterior_image_1_left": rec.images[EXTERIOR_IMAGE],
                "observation.images.wrist_image_left": rec.images[WRIST_IMAGE],
                "observation.state.joint_position": state[:7],
                "observation.state.gripper_position": state[7:],
                "observation.state": state,
                "action": np.asarray(rec.action, np.float32),
                "action.executed": executed,
                "safety.flags": np.array([flags], np.int64),
                "link.rtt_ms": np.array([rec.rtt_ms if rec.rtt_ms is not None else np.nan], np.float32),
                "link.infer_ms": np.array([rec.infer_ms if rec.infer_ms is not None else np.nan], np.float32),
                "task": prompt,
            }
        )
        self.frames_in_episode += 1

    def end_episode(self) -> None:
        """Save the buffered frames as one episode (an empty episode is skipped)."""
        if self.frames_in_episode:
            self.dataset.save_episode()
            self.episodes += 1
            log.info("saved episode %d (%d frames)", self.episodes, self.frames_in_episode)
        self.frames_in_episode = 0

    def finalize(self) -> None:
        if self._finalized:
            return
        self.end_episode()
        self.dataset.finalize()
        self._finalized = True

    def __enter__(self) -> RolloutRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.finalize()
