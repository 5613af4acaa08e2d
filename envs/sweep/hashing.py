"""The cell hash: a short, stable name for "this experiment with these settings", the key of the results store.

It is the SHA-256 of a canonical JSON rendering (sorted keys, no whitespace, floats by `repr`) of the cell's
spec — base experiment name, overrides, data and evaluation settings — so it does not depend on key order, on
the process (no `hash()`), on axis or level names, or on unrelated trainer defaults added later. A change of a
default inside configs/ therefore does NOT change the hash: the store records the commit of every result, and
`composed_digest` (the same hash of the fully composed pion-train config) shows whether two results really
ran the same composed config. HASH_VERSION is part of the spec; bump it when the runner's meaning changes.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

HASH_VERSION = 1
HASH_LEN = 12


def _canonical(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"non-finite value {value} in a cell spec")
        return int(value) if value.is_integer() and abs(value) < 2**53 else value  # 1.0 and 1 hash alike
    raise TypeError(f"cell spec values must be JSON-like, got {type(value).__name__}")


def digest(obj: Any) -> str:
    text = json.dumps(_canonical(obj), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:HASH_LEN]


def cell_hash(spec: dict) -> str:
    """The results-store key of a cell spec (envs.sweep.grid.cell_spec)."""
    return digest({"v": HASH_VERSION, **spec})


def composed_digest(train_cfg: dict) -> str:
    """Digest of a composed pion-train config without the keys that only place or display a run."""
    drop = {"out_dir", "run_name", "resume", "num_workers", "device"}
    cfg = {k: v for k, v in train_cfg.items() if k not in drop}
    cfg["log"] = {k: v for k, v in dict(cfg.get("log", {})).items() if k not in ("progress", "tensorboard")}
    cfg["data"] = {k: v for k, v in dict(cfg.get("data", {})).items() if k != "root"}
    return digest(cfg)
