"""Merge finished shards into the one LeRobotDataset a user loads, atomically.

    <out>/dataset -> versions/v0003     a symlink, swapped atomically after each merge
    <out>/versions/v0003/               LeRobotDataset v3: data/, videos/, meta/ (stats included), README.md

Merging rebuilds the dataset from the finished shards (the first `episodes_per_task` successes of each
task, in task, attempt order) into a new version directory, then repoints the symlink; readers see either the old or the new complete dataset.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from envs.datagen.card import write_card
from envs.datagen.shards import REPO_ID, shard_info, successful_shards

DATASET_LINK = "dataset"


def dataset_path(out: Path) -> Path:
    return Path(out) / DATASET_LINK


def _versions(out: Path) -> list[Path]:
    root = Path(out) / "versions"
    return sorted(root.glob("v[0-9][0-9][0-9][0-9]")) if root.is_dir() else []


def merge_shards(out: Path, run_info: dict) -> Path | None:
    """Aggregate every finished shard into a new dataset version; return its path (None if no shards)."""
    from lerobot.datasets.aggregate import aggregate_datasets

    out = Path(out)
    shards = successful_shards(out, run_info.get("episodes_per_task"))
    if not shards:
        return None
    versions = _versions(out)
    number = int(versions[-1].name[1:]) + 1 if versions else 1
    target = out / "versions" / f"v{number:04d}"
    tmp = target.with_name(f".tmp-{target.name}")
    shutil.rmtree(tmp, ignore_errors=True)
    aggregate_datasets(repo_ids=[REPO_ID] * len(shards), aggr_repo_id=REPO_ID, roots=shards, aggr_root=tmp)
    write_card(tmp, run_info, [shard_info(s) for s in shards])
    os.replace(tmp, target)
    link_tmp = out / f".{DATASET_LINK}.tmp"
    link_tmp.unlink(missing_ok=True)
    link_tmp.symlink_to(Path("versions") / target.name, target_is_directory=True)
    os.replace(link_tmp, dataset_path(out))  # atomic swap of the symlink
    for old in versions:  # older complete versions are no longer referenced
        shutil.rmtree(old, ignore_errors=True)
    return target
