"""Crash-safe storage of generated episodes: one finalized single-episode LeRobotDataset per shard.

    <out>/shards/task03_attempt007/     a finalized LeRobotDataset (1 episode), renamed into place
    <out>/shards/task03_attempt008.failed   a JSON marker: this attempt ran and did not succeed

A shard appears only by an atomic rename of a complete, finalized dataset, so a run killed at any
moment leaves only whole episodes behind; a re-run skips every attempt that has a shard or marker.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import asdict
from pathlib import Path

from envs.datagen.record import Demo
from envs.libero.constants import DATASET_FPS
from vla.data.layouts import ACTION, Layout
from vla.data.video import video_backend

SHARD_RE = re.compile(r"^task(\d{2})_attempt(\d{3})$")
REPO_ID = "local/pion-libero-demos"


def shard_name(task_id: int, attempt: int) -> str:
    return f"task{task_id:02d}_attempt{attempt:03d}"


def shards_dir(out: Path) -> Path:
    return Path(out) / "shards"


def write_shard(
    out: Path,
    task_id: int,
    attempt: int,
    demo: Demo,
    layout: Layout,
    resolution: int,
    use_videos: bool = True,
) -> Path:
    """Write one successful demo as a finalized dataset under a temporary name, then rename it in."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    final = shards_dir(out) / shard_name(task_id, attempt)
    tmp = shards_dir(out) / f".tmp-{shard_name(task_id, attempt)}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    ds = LeRobotDataset.create(
        repo_id=REPO_ID,
        fps=DATASET_FPS,
        features=layout.features(resolution, use_videos),
        root=tmp,
        robot_type="panda",
        use_videos=use_videos,
        video_backend=video_backend(),  # chosen quietly once (no torchcodec traceback without FFmpeg)
    )
    for t in range(demo.length):
        ds.add_frame({layout.keys[k]: demo.frames[k][t] for k in layout.keys} | {"task": demo.task})
    # In-process encoding: lerobot's default spawns one fresh interpreter per camera per episode, each
    # importing torch + lerobot (~15 s of CPU) to encode a few seconds of video, which cost more CPU than
    # simulating the episode and halved the episodes/hour of every generation worker.
    ds.save_episode(parallel_encoding=False)
    ds.finalize()
    info = asdict(demo.result) | {
        "frames": demo.length,
        "dropped_noops": demo.dropped_noops,
        "task": demo.task,
    }
    (tmp / "episode.json").write_text(json.dumps(info))
    os.replace(tmp, final)  # atomic on one filesystem: a shard is either absent or complete
    return final


def mark_failed(out: Path, task_id: int, attempt: int, info: dict) -> None:
    path = shards_dir(out) / f"{shard_name(task_id, attempt)}.failed"
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(info))
    os.replace(tmp, path)


def scan(out: Path) -> dict[int, dict[int, bool]]:
    """{task_id: {attempt: succeeded}} for every finished attempt (shard or failure marker)."""
    done: dict[int, dict[int, bool]] = {}
    root = shards_dir(out)
    if not root.is_dir():
        return done
    for entry in root.iterdir():
        name, failed = (
            (entry.name[: -len(".failed")], True) if entry.name.endswith(".failed") else (entry.name, False)
        )
        m = SHARD_RE.match(name)
        if m and (failed or (entry / "meta" / "info.json").is_file()):
            done.setdefault(int(m[1]), {})[int(m[2])] = not failed
    return done


def counted_attempts(out: Path, per_task: int | None = None) -> dict[int, dict[int, bool]]:
    """`scan` cut after each task's `per_task`-th success: the attempts that make up the dataset.

    Parallel workers may finish a few attempts past that point; those are neither merged nor counted as
    used, so the dataset (and the init states it used) is the same for any worker count."""
    done = scan(out)
    if per_task is None:
        return done
    cut: dict[int, dict[int, bool]] = {}
    for t, attempts in done.items():
        kept, n_ok = {}, 0
        for a in sorted(attempts):
            if n_ok >= per_task:
                break
            kept[a] = attempts[a]
            n_ok += attempts[a]
        cut[t] = kept
    return cut


def successful_shards(out: Path, per_task: int | None = None) -> list[Path]:
    """Shard directories of the dataset, in (task, attempt) order: the first `per_task` successes per task."""
    done = counted_attempts(out, per_task)
    return [shards_dir(out) / shard_name(t, a) for t in sorted(done) for a in sorted(done[t]) if done[t][a]]


def shard_info(shard: Path) -> dict:
    return json.loads((shard / "episode.json").read_text())


def clean_tmp(out: Path) -> None:
    """Remove partial shards left by a killed run."""
    root = shards_dir(out)
    if root.is_dir():
        for entry in root.glob(".tmp-*"):
            shutil.rmtree(entry, ignore_errors=True)
        for entry in root.glob("*.tmp*"):
            entry.unlink(missing_ok=True)


__all__ = [
    "ACTION",
    "REPO_ID",
    "clean_tmp",
    "counted_attempts",
    "mark_failed",
    "scan",
    "shard_info",
    "shard_name",
    "successful_shards",
    "write_shard",
]
