"""The results file: one JSON line per finished episode, appended and fsync'ed as the episode ends.

Reading is tolerant: a torn last line (a crash mid-write) is ignored and the episode simply runs
again; a key seen twice (two shards overlapping by mistake, or a merge of a file with itself) is
counted once, first occurrence wins. That is what makes resume and merge safe.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

RESULTS_FILE = "episodes.jsonl"
SCHEMA_VERSION = 1
# Every line has at least these fields (tests/eval check the schema).
RECORD_FIELDS = {
    "schema": int,
    "key": str,
    "suite": str,
    "task_id": int,
    "task": str,
    "init_state": int,
    "seed": int,
    "perturbation": str,
    "severity": int,
    "success": bool,
    "steps": int,
    "queries": int,
    "seconds": float,
    "attempts": int,
    "error": (str, type(None)),
    "video": (str, type(None)),
}


class ResultsWriter:
    """Append-only JSONL writer; every record is on disk (flush + fsync) before `write` returns."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._repair_tail()
        self._f = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()

    def _repair_tail(self) -> None:
        """Cut a torn last line (no trailing newline) so the next record starts on a fresh line."""
        if not self.path.exists() or self.path.stat().st_size == 0:
            return
        data = self.path.read_bytes()
        if not data.endswith(b"\n"):
            cut = data.rfind(b"\n") + 1
            with open(self.path, "r+b") as f:
                f.truncate(cut)

    def write(self, record: dict) -> None:
        self._f.write(json.dumps(record, sort_keys=True) + "\n")
        self._f.flush()
        os.fsync(self._f.fileno())

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> ResultsWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_records(paths: Iterable[str | Path]) -> list[dict]:
    """All valid records of one or more JSONL files (or run directories), deduplicated by key."""
    seen: dict[str, dict] = {}
    for p in paths:
        p = Path(p)
        if p.is_dir():
            p = p / RESULTS_FILE
        if not p.exists():
            raise FileNotFoundError(f"no results file at {p}")
        with open(p, encoding="utf-8") as f:
            for line in f:
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a torn line from a crash; that episode is re-run on resume
                if isinstance(rec, dict) and "key" in rec:
                    seen.setdefault(rec["key"], rec)
    return list(seen.values())


def finished_keys(path: str | Path) -> set[str]:
    path = Path(path)
    return {r["key"] for r in read_records([path])} if path.exists() else set()


def check_record(rec: dict) -> None:
    """Raise ValueError when a record does not match the schema."""
    for name, typ in RECORD_FIELDS.items():
        if name not in rec:
            raise ValueError(f"record {rec.get('key')!r} lacks field {name!r}")
        if typ is float and isinstance(rec[name], int) and not isinstance(rec[name], bool):
            continue
        if not isinstance(rec[name], typ) or (typ is int and isinstance(rec[name], bool)):
            raise ValueError(f"record {rec.get('key')!r}: field {name!r} = {rec[name]!r} is not {typ}")
