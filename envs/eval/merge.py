"""Merge the JSONL files of shards (or of any runs) into one summary, identical to a single run's."""

from __future__ import annotations

from pathlib import Path

from envs.eval.results import RESULTS_FILE, ResultsWriter, read_records
from envs.eval.summary import print_table, summarize, write_summary


def merge(
    inputs: list[str | Path], out_dir: str | Path, *, expected: int | None = None, plot: bool = True
) -> dict:
    """Combine shard results (files or run dirs) into `out_dir`: episodes.jsonl (deduplicated), summary.json, PNG."""
    if not inputs:
        raise ValueError("merge needs at least one results file or run directory")
    records = sorted(read_records(inputs), key=lambda r: r["key"])
    if expected is not None and len(records) != expected:
        print(
            f"[pion-eval] warning: merged {len(records)} episodes, expected {expected} (a shard missing or unfinished?)"
        )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    target = out / RESULTS_FILE
    if target.exists() and any(Path(p).resolve() in (target.resolve(), out.resolve()) for p in inputs):
        raise ValueError(f"merge output {target} is also an input; choose another out_dir")
    target.unlink(missing_ok=True)
    with ResultsWriter(target) as w:
        for r in records:
            w.write(r)
    summary = summarize(records)
    write_summary(summary, out)
    print_table(summary)
    if plot and records:
        from envs.eval.plot import plot_summary

        plot_summary(summary, out / "summary.png")
    return summary
