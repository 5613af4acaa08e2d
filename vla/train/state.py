"""Training checkpoints on disk: atomic writes, discovery of the latest complete one, pruning, config diffs.

Layout of a run directory:

    <run>/checkpoints/step_00000500/
        pretrained/          the model in the models package's format (save_pretrained): config.json, ...
        ema/                 the EMA weights in the same format (when EMA is on)
        trainer_state.pt     optimizer (every routed group), scheduler, EMA shadow, step, sampler position
        rank{r}.pt           per-rank state: RNG (python, numpy, torch, CUDA), sampler position, processor RNG
        meta.json            written last: step, model config, metrics; its presence marks the checkpoint complete
    <run>/best.json          the step and score of the best evaluated checkpoint (never pruned)

A checkpoint is written into `checkpoints/.tmp-step_...` and renamed into place only when every file is
complete, so a crash or a full disk in the middle leaves the previous checkpoints untouched; leftovers of
such a failure are ignored when looking for the latest checkpoint and removed by the next write.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

CKPT_DIR = "checkpoints"
META = "meta.json"
TRAINER_STATE = "trainer_state.pt"
_STEP_RE = re.compile(r"^step_(\d+)$")


class ResumeError(ValueError):
    """A run cannot be resumed as configured (no checkpoint, different model config, ...)."""


def step_dir_name(step: int) -> str:
    return f"step_{step:08d}"


def complete_checkpoints(run_dir: str | Path) -> list[tuple[int, Path]]:
    """(step, path) of every complete checkpoint of the run, ascending by step."""
    root = Path(run_dir) / CKPT_DIR
    if not root.is_dir():
        return []
    found = []
    for path in root.iterdir():
        m = _STEP_RE.match(path.name)
        if m and (path / META).is_file():
            found.append((int(m.group(1)), path))
    return sorted(found)


def latest_checkpoint(run_dir: str | Path) -> tuple[int, Path] | None:
    found = complete_checkpoints(run_dir)
    return found[-1] if found else None


def temp_dir_for(run_dir: str | Path, step: int) -> Path:
    return Path(run_dir) / CKPT_DIR / f".tmp-{step_dir_name(step)}"


def begin_checkpoint(run_dir: str | Path, step: int) -> Path:
    """A fresh, empty temporary directory for the checkpoint of `step` (stale leftovers removed)."""
    root = Path(run_dir) / CKPT_DIR
    root.mkdir(parents=True, exist_ok=True)
    for stale in root.glob(".tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)
    for stale in root.glob(".trash-*"):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = temp_dir_for(run_dir, step)
    tmp.mkdir()
    return tmp


def _fsync_tree(path: Path) -> None:
    for p in sorted(path.rglob("*")):
        if p.is_file():
            with open(p, "rb") as f:
                os.fsync(f.fileno())
    for d in [path, *[p for p in path.rglob("*") if p.is_dir()]]:
        fd = os.open(d, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_meta(tmp: Path, meta: Mapping[str, Any]) -> None:
    """The last file of a checkpoint: marks it complete."""
    (tmp / META).write_text(json.dumps(dict(meta), indent=2, sort_keys=True, default=str) + "\n")


def commit_checkpoint(run_dir: str | Path, step: int) -> Path:
    """Move the finished temporary directory into place (replacing an older write of the same step)."""
    tmp = temp_dir_for(run_dir, step)
    if not (tmp / META).is_file():
        raise RuntimeError(f"checkpoint {tmp} is incomplete (no {META}); not committing it")
    _fsync_tree(tmp)
    final = Path(run_dir) / CKPT_DIR / step_dir_name(step)
    trash = None
    if final.exists():
        trash = final.with_name(f".trash-{final.name}")
        shutil.rmtree(trash, ignore_errors=True)
        os.rename(final, trash)
    os.rename(tmp, final)
    fd = os.open(final.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    if trash is not None:
        shutil.rmtree(trash, ignore_errors=True)
    return final


def prune(run_dir: str | Path, keep_last: int, protect: set[int] = frozenset()) -> list[int]:
    """Delete all but the newest `keep_last` complete checkpoints (steps in `protect` survive); returns deleted."""
    found = complete_checkpoints(run_dir)
    doomed = [(s, p) for s, p in found[:-keep_last] if s not in protect] if keep_last > 0 else []
    for _, path in doomed:
        trash = path.with_name(f".trash-{path.name}")
        os.rename(path, trash)  # atomic: never leaves a half-deleted step_ dir that looks complete
        shutil.rmtree(trash, ignore_errors=True)
    return [s for s, _ in doomed]


def read_meta(ckpt: str | Path) -> dict:
    return json.loads((Path(ckpt) / META).read_text())


# ---- config comparison ------------------------------------------------------------------------------------
def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(d, Mapping):
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    if isinstance(d, tuple):
        d = list(d)
    return {prefix[:-1]: d}


def config_diff(saved: Mapping, current: Mapping) -> list[str]:
    """'key: saved -> current' for every leaf that differs (missing on one side shows as <absent>)."""
    a, b = (
        _flatten(json.loads(json.dumps(saved, default=str))),
        _flatten(json.loads(json.dumps(current, default=str))),
    )
    lines = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key, "<absent>"), b.get(key, "<absent>")
        if va != vb:
            lines.append(f"{key}: {va!r} (checkpoint) != {vb!r} (now)")
    return lines


def check_same_model(meta: Mapping, model_config: Mapping, ckpt: Path) -> None:
    diff = config_diff(meta.get("model_config", {}), model_config)
    if diff:
        raise ResumeError(
            f"refusing to resume from {ckpt}: the model config differs in {len(diff)} key(s):\n  "
            + "\n  ".join(diff)
            + "\nresume with the checkpoint's model config, or start a new run (resume=false or another run_name)"
        )


# ---- RNG --------------------------------------------------------------------------------------------------
def rng_state() -> dict:
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_torch(obj: Any, path: Path) -> None:
    torch.save(obj, path)


def load_torch(path: Path) -> Any:
    if not path.is_file():
        raise ResumeError(
            f"checkpoint file {path} is missing; the checkpoint is damaged, delete it to resume earlier"
        )
    return torch.load(path, map_location="cpu", weights_only=False)


# ---- best checkpoint --------------------------------------------------------------------------------------
BEST = "best.json"


def write_best(run_dir: str | Path, best: Mapping) -> None:
    path = Path(run_dir) / BEST
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(dict(best), indent=2, sort_keys=True) + "\n")
    tmp.replace(path)


def read_best(run_dir: str | Path) -> dict | None:
    path = Path(run_dir) / BEST
    return json.loads(path.read_text()) if path.is_file() else None
