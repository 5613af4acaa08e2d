"""Recorded franky-sim episodes: merge per-instruction recordings, and read back what the report needs.

`pion-robot` records one LeRobot dataset per run (one instruction each, `deploy/recording.py`, the
`pion_droid` layout). `merge_recordings` joins them into one training set with lerobot's own aggregation;
`read_episodes` reads the numeric columns of a recording (no image decoding): per episode the instruction,
the last joint configuration, the safety-filter flags and the link timing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from deploy.recording import FLAG_BITS

REPO_ID = "local/droid_sim"


@dataclass
class Episode:
    index: int
    task: str
    steps: int
    final_q: np.ndarray  # joint positions at the last recorded step
    flags: dict[str, int] = field(default_factory=dict)  # safety-filter flag -> steps it was raised on
    rtt_ms: np.ndarray = field(default_factory=lambda: np.zeros(0))  # per query (NaN rows dropped)
    infer_ms: np.ndarray = field(default_factory=lambda: np.zeros(0))


def merge_recordings(roots: list[str | Path], out: str | Path) -> Path:
    """One LeRobot dataset at `out` holding every episode of the recordings `roots` (in order)."""
    from lerobot.datasets.aggregate import aggregate_datasets

    roots = [Path(r) for r in roots]
    missing = [str(r) for r in roots if not (r / "meta" / "info.json").is_file()]
    if missing:
        raise FileNotFoundError(f"not LeRobot recordings (no meta/info.json): {missing}")
    out = Path(out)
    if out.exists():
        raise FileExistsError(f"merge target {out} exists; choose a new directory")
    aggregate_datasets(repo_ids=[REPO_ID] * len(roots), aggr_repo_id=REPO_ID, roots=roots, aggr_root=out)
    return out


def _tasks(root: Path) -> dict[int, str]:
    import pyarrow.parquet as pq

    table = pq.read_table(root / "meta" / "tasks.parquet").to_pandas()
    if "task_index" in table.columns and "task" in table.columns:
        return dict(zip(table["task_index"].astype(int), table["task"].astype(str)))
    return {int(i): str(t) for t, i in zip(table.index, table["task_index"])}  # task is the index


def _column(table: dict, key: str, rows: np.ndarray) -> np.ndarray:
    """A 1-wide column as a flat float array (lerobot stores (1,) features as scalars or 1-lists)."""
    return np.asarray([table[key][r] for r in rows], dtype=np.float64).reshape(len(rows))


def read_episodes(root: str | Path) -> list[Episode]:
    """Episodes of one recording, in order (numeric columns only)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    root = Path(root)
    files = sorted((root / "data").rglob("*.parquet"))
    if not files:
        raise FileNotFoundError(f"{root} has no data/**/*.parquet (was the recording finalised?)")
    cols = [
        "episode_index",
        "task_index",
        "observation.state",
        "safety.flags",
        "link.rtt_ms",
        "link.infer_ms",
    ]
    table = pa.concat_tables([pq.read_table(f, columns=cols) for f in files]).to_pydict()
    tasks = _tasks(root)
    ep_index = np.asarray(table["episode_index"], dtype=np.int64)
    out = []
    for e in np.unique(ep_index):
        rows = np.flatnonzero(ep_index == e)
        bits = _column(table, "safety.flags", rows).astype(np.int64)
        rtt, infer = _column(table, "link.rtt_ms", rows), _column(table, "link.infer_ms", rows)
        out.append(
            Episode(
                index=int(e),
                task=tasks[int(table["task_index"][rows[0]])],
                steps=len(rows),
                final_q=np.asarray(table["observation.state"][rows[-1]][:7], dtype=np.float64),
                flags={name: int(np.count_nonzero(bits & (1 << i))) for i, name in enumerate(FLAG_BITS)},
                rtt_ms=rtt[np.isfinite(rtt)],
                infer_ms=infer[np.isfinite(infer)],
            )
        )
    return out
