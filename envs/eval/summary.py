"""Aggregate episode records into success rates with Wilson 95% intervals: per task, suite, category, overall.

The summary is a pure function of the set of records (sorted, no wall-clock fields), so a merge of
shards and a single-machine run over the same episodes give byte-identical `summary.json` files.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

from vla.stats import Z95, wilson_interval  # noqa: F401  (re-exported)

SUMMARY_FILE = "summary.json"


def _stats(records: list[dict]) -> dict:
    n = len(records)
    k = sum(bool(r["success"]) for r in records)
    lo, hi = wilson_interval(k, n)
    ok_steps = [r["steps"] for r in records if r["success"]]
    return {
        "episodes": n,
        "successes": k,
        "success_rate": round(k / n, 6) if n else None,
        "ci95": [round(lo, 6), round(hi, 6)],
        "mean_steps": round(sum(r["steps"] for r in records) / n, 3) if n else None,
        "mean_steps_success": round(sum(ok_steps) / len(ok_steps), 3) if ok_steps else None,
        "errors": sum(r.get("error") is not None for r in records),
    }


def summarize(records: Iterable[dict]) -> dict:
    recs = sorted(records, key=lambda r: r["key"])
    by_suite: dict[str, list] = defaultdict(list)
    by_task: dict[tuple, list] = defaultdict(list)
    by_cat: dict[str, list] = defaultdict(list)
    for r in recs:
        by_suite[r["suite"]].append(r)
        by_task[(r["suite"], r["task_id"])].append(r)
        by_cat[r.get("perturbation", "none")].append(r)
    tasks = []
    for (suite, tid), rs in sorted(by_task.items()):
        name = next((r["task"] for r in rs if r.get("task")), "")
        tasks.append({"suite": suite, "task_id": tid, "task": name} | _stats(rs))
    summary = {
        "schema": 1,
        "overall": _stats(recs),
        "suites": {s: _stats(rs) for s, rs in sorted(by_suite.items())},
        "tasks": tasks,
    }
    if set(by_cat) != {"none"}:
        cats = {}
        for cat, rs in sorted(by_cat.items()):
            per_suite = defaultdict(list)
            per_sev = defaultdict(list)
            for r in rs:
                per_suite[r["suite"]].append(r)
                per_sev[str(r.get("severity", 0))].append(r)
            cats[cat] = _stats(rs) | {
                "suites": {s: _stats(x) for s, x in sorted(per_suite.items())},
                "severities": {s: _stats(x) for s, x in sorted(per_sev.items(), key=lambda kv: int(kv[0]))},
            }
        summary["categories"] = cats
    return summary


def write_summary(summary: dict, out_dir: str | Path) -> Path:
    path = Path(out_dir) / SUMMARY_FILE
    path.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return path


def _pct(s: dict) -> str:
    if not s["episodes"]:
        return "-"
    lo, hi = s["ci95"]
    return f"{100 * s['success_rate']:.1f}%  [{100 * lo:.1f}, {100 * hi:.1f}]"


def print_table(summary: dict, console=None) -> None:
    """The summary as rich tables on the terminal: tasks, suites, categories, overall."""
    import sys

    from rich.console import Console
    from rich.table import Table

    console = console or (Console() if sys.stdout.isatty() else Console(width=140))
    t = Table(title="Success rate (Wilson 95% CI)")
    for col in ("suite", "task", "episodes", "success", "mean steps", "errors"):
        t.add_column(col, justify="left" if col in ("suite", "task") else "right")
    for r in summary["tasks"]:
        t.add_row(
            r["suite"],
            f"{r['task_id']}: {r['task'][:48]}",
            str(r["episodes"]),
            _pct(r),
            f"{r['mean_steps']:.1f}",
            str(r["errors"]),
        )
    t.add_section()
    for suite, s in summary["suites"].items():
        t.add_row(
            suite, "[b]all tasks[/b]", str(s["episodes"]), _pct(s), f"{s['mean_steps']:.1f}", str(s["errors"])
        )
    o = summary["overall"]
    t.add_row(
        "[b]overall[/b]",
        "",
        str(o["episodes"]),
        f"[b]{_pct(o)}[/b]",
        f"{o['mean_steps']:.1f}" if o["episodes"] else "-",
        str(o["errors"]),
    )
    console.print(t)
    if "categories" in summary:
        c = Table(title="Per perturbation category")
        for col in ("category", "episodes", "success", "by severity"):
            c.add_column(col)
        for cat, s in summary["categories"].items():
            sev = "  ".join(f"{k}:{100 * v['success_rate']:.0f}%" for k, v in s["severities"].items())
            c.add_row(cat, str(s["episodes"]), _pct(s), sev)
        console.print(c)
