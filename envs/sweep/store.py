"""The results store: an append-only JSONL file (committed, docs/results/store.jsonl), one line per finished cell.

Each line is a record keyed by the cell's hash with its provenance (commit, machine, date, wall time, the
exact command) and its results. A cell may have several lines (a `partial` record, later a `done` one after
the re-run finished it); the last line of a hash is the cell's current state. Lines are written whole with
one `write` + fsync; a truncated last line (a kill in mid-write) is ignored on read and removed by the next
append. A malformed line anywhere else is an error naming the line.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import platform
import subprocess
from pathlib import Path

STATUSES = ("done", "partial", "failed")
REQUIRED = ("hash", "grid", "cell", "status", "command", "commit", "machine", "date", "wall_s")


class StoreError(ValueError):
    """The results store file is malformed."""


def git_commit(cwd: Path | None = None) -> tuple[str, bool]:
    """(short commit, whether tracked files outside docs/ differ from it); ("unknown", False) outside a git
    checkout. docs/ holds the results stores and the docs generated from them, which the tools themselves append
    to between commits: a result measured with unchanged code and config is not flagged dirty by them."""
    try:
        run = {"capture_output": True, "text": True, "timeout": 10, "check": True, "cwd": cwd}
        commit = subprocess.run(["git", "rev-parse", "--short=10", "HEAD"], **run).stdout.strip()
        status = ["git", "status", "--porcelain", "-uno", "--", ":(top)", ":(top,exclude)docs"]
        dirty = bool(subprocess.run(status, **run).stdout.strip())
    except (OSError, subprocess.SubprocessError):
        return "unknown", False
    return commit, dirty


def machine() -> dict:
    """CPU model, logical cores usable by this process, and GPU name when torch sees one."""
    cpu = platform.processor() or platform.machine() or "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    out = {"cpu": cpu, "cores": cores}
    with contextlib.suppress(Exception):
        import torch

        if torch.cuda.is_available():
            out["gpu"] = f"{torch.cuda.device_count()}x {torch.cuda.get_device_name(0)}"
    return out


def machine_label(record: dict) -> str:
    """'CPU, N cores[, GPU]' of a record's provenance."""
    m = record.get("machine", {})
    gpu = f", {m['gpu']}" if m.get("gpu") else ""
    return f"{m.get('cpu', '?')}, {m.get('cores', '?')} cores{gpu}"


def provenance() -> dict:
    commit, dirty = git_commit(Path(__file__).resolve().parent)
    return {
        "commit": commit,
        "dirty": dirty,
        "machine": machine(),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


class ResultsStore:
    """Read and append the JSONL results store at `path`."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def records(self) -> list[dict]:
        out = read_jsonl(self.path)
        for i, rec in enumerate(out, 1):
            if not isinstance(rec, dict) or "hash" not in rec or rec.get("status") not in STATUSES:
                raise StoreError(f"{self.path}: record {i}: a record needs a hash and a status in {STATUSES}")
        return out

    def latest(self) -> dict[str, dict]:
        """hash -> the last record of that cell."""
        return {r["hash"]: r for r in self.records()}

    def finished(self, retry_failed: bool = False) -> set[str]:
        """Hashes a re-run skips: status done (and failed, unless retry_failed)."""
        skip = {"done"} if retry_failed else {"done", "failed"}
        return {h for h, r in self.latest().items() if r["status"] in skip}

    def append(self, record: dict) -> None:
        missing = [k for k in REQUIRED if k not in record]
        if missing:
            raise StoreError(f"record for {record.get('hash')} lacks {missing}")
        if record["status"] not in STATUSES:
            raise StoreError(f"status must be one of {STATUSES}, got {record['status']!r}")
        append_jsonl(self.path, record)


def read_jsonl(path: str | Path) -> list[dict]:
    """Every JSON line of `path` ([] when absent); a cut-short last line (a kill during its write) is skipped,
    any other bad line raises StoreError."""
    path = Path(path)
    if not path.is_file():
        return []
    lines = path.read_text().splitlines()
    out = []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            if i == len(lines):  # a kill during the last write: that record simply did not finish
                continue
            raise StoreError(f"{path}:{i}: not a JSON line") from None
    return out


def append_jsonl(path: str | Path, record: dict) -> None:
    """Append one record as a canonical JSON line, durably; a cut-short last line is dropped first."""
    path = Path(path)
    text = json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab+") as f:
        f.seek(0)
        data = f.read()
        if data and not data.endswith(b"\n"):  # the previous write was cut short: drop its partial line
            f.truncate(data.rfind(b"\n") + 1)
        f.write(text.encode())
        f.flush()
        os.fsync(f.fileno())
