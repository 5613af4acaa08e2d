"""Step time of finished sweep cells, read from the trainer's own logs (docs/benchmarks.md "Training step in real runs").

    .venv/bin/python benchmarks/sweep_step_times.py outputs/sweep/object_task0

For every cell directory under the grid's run folder: the logged `time/step_s` (processor + fwd/bwd + optimizer
step) and `time/data_s` (data wait): median / lower quartile / min over the logged steps. The run folders come from `pion-sweep <grid>`; they are not committed.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path


def cell_times(metrics: Path) -> tuple[list[float], list[float]]:
    rows = [json.loads(line) for line in metrics.read_text().splitlines() if '"time/step_s"' in line]
    return [r["time/step_s"] for r in rows], [r["time/data_s"] for r in rows]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("grid_dir", type=Path, help="outputs/sweep/<grid>")
    args = ap.parse_args()
    cells = {}
    for metrics in sorted(args.grid_dir.glob("*/metrics.jsonl")):
        steps, data = cell_times(metrics)
        if len(steps) >= 4:
            cells[metrics.parent.name] = (steps, data)
    if not cells:
        raise SystemExit(f"error: no cell with logged step times under {args.grid_dir}")
    print("| cell | logged steps | median step | lower quartile | min | data wait (median) |")
    print("|---|---|---|---|---|---|")
    for name, (steps, data) in cells.items():
        q1 = statistics.quantiles(steps, n=4)[0]
        print(f"| `{name}` | {len(steps)} | {statistics.median(steps):.3f} s | {q1:.3f} s | {min(steps):.3f} s "
              f"| {1000 * statistics.median(data):.1f} ms |")  # fmt: skip


if __name__ == "__main__":
    main()
