"""docs/results.md from the results store: one command (`pion-results`), no hand edits, byte-stable output.

First the headline (configs/results/headline.yaml, envs/sweep/headline.py): the paper's comparison next to ours.
Then, for each grid: one table per level of the `budget` axis (one table when there is none); a row per arm (the
levels of the other axes, `seed` pooled) with the success at the last checkpoint every seed evaluated, its
Wilson 95% CI, the cells it pools and the end-of-training loss (the tie-break between learning rates); for a
multi-task grid, each arm's successes per task at that checkpoint (evaluation records' `per_task`); the
significant differences (two-proportion z-test or Fisher's exact test for small counts, Holm-corrected
per table, alpha 0.05;
envs/sweep/significance.py); success-vs-step curves and, when logged, diagnosis plots
(PNG under docs/img/results/); the perturbation table when the grid has a `perturb` section
(envs/sweep/robustness.py); and a provenance table giving every cell's exact command, commit, machine,
date and wall time. Failed cells appear only in the provenance table.
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path

from envs.sweep.diagnosis import diagnosis_lines, diagnosis_plots
from envs.sweep.headline import headline_lines, load_headline
from envs.sweep.plots import pooled_curve, success_curves
from envs.sweep.robustness import perturbation_lines
from envs.sweep.significance import PROPORTION_TEST, compare_all
from envs.sweep.store import ResultsStore, machine_label
from vla.stats import wilson_interval

POOLED, TABLES = "seed", "budget"
ALPHA = 0.05
END_LOGS = 5  # logged losses averaged for an arm's end-of-training loss


def arm_label(cell: dict) -> str:
    parts = [f"{a}={v}" for a, v in cell.items() if a not in (POOLED, TABLES)]
    return ", ".join(parts) or "all"


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text).strip("_").lower() or "all"


def _rel(path: Path, doc_dir: Path) -> str:
    return Path(os.path.relpath(path, doc_dir)).as_posix()


def final_point(records: list[dict]) -> tuple[int, int, int] | None:
    """(step, successes, episodes) pooled over the arm's seeds at the last step they all evaluated."""
    pts = pooled_curve(records)
    return pts[-1] if pts else None


def _seed(rec: dict) -> str:
    """The cell's training seed: its `seed` level, else the seed its spec ran with (set in the grid's base)."""
    if POOLED in rec["cell"]:
        return str(rec["cell"][POOLED])
    seed = (rec.get("spec") or {}).get("overrides", {}).get("seed")
    return str(seed) if seed is not None else "-"


def end_loss(records: list[dict]) -> float | None:
    """Training loss at the end of the arm's runs: mean of each run's last END_LOGS logged values, then over seeds."""
    ends = []
    for rec in records:
        curve = [float(v) for _, v in rec.get("loss_curve") or []]
        if curve:
            ends.append(sum(curve[-END_LOGS:]) / len(curve[-END_LOGS:]))
    return sum(ends) / len(ends) if ends else None


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.2f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min"


def budget_section(
    grid: str, budget: str, arms: dict[str, list[dict]], img_dir: Path, doc_dir: Path
) -> list[str]:
    title = f"{grid}" + (f", budget {budget}" if budget else "")
    lines = [f"### {title}", ""]
    lines += [
        "| arm | seeds | update | success | % | Wilson 95% CI | per seed | cells | train loss (end) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    finals: dict[str, tuple[int, int]] = {}
    steps: dict[str, int] = {}  # arm -> its final checkpoint
    for label, recs in arms.items():
        point = final_point(recs)
        seeds = ", ".join(_seed(r) for r in recs)
        partial = any(r["status"] == "partial" for r in recs)
        cells = ", ".join(f"`{r['hash']}`" + (" (partial)" if r["status"] == "partial" else "") for r in recs)
        loss = end_loss(recs)
        loss = f"{loss:.4f}" if loss is not None else "-"
        if point is None:
            lines.append(f"| {label} | {seeds} | - | not evaluated yet | - | - | - | {cells} | {loss} |")
            continue
        step, k, n = point
        lo, hi = wilson_interval(k, n)
        per_seed = "; ".join(
            f"{e['successes']}/{e['episodes']}" for r in recs for e in r["evals"] if int(e["step"]) == step
        )
        finals[label], steps[label] = (k, n), step
        star = "*" if partial else ""
        lines.append(
            f"| {label} | {seeds} | {step}{star} | {k}/{n} | {_pct(k / n)} | {_pct(lo)}–{_pct(hi)} | {per_seed} | {cells} "
            f"| {loss} |"
        )
    if any(r["status"] == "partial" for recs in arms.values() for r in recs):
        lines += ["", "\\* partial: at least one pooled cell has not finished every checkpoint yet."]
    lines += per_task_lines(arms, steps)
    lines += [
        "",
        f"Train loss (end): the training loss averaged over the last {END_LOGS} logged values of each run, then "
        "over seeds; the tie-break between learning rates of equal success.",
    ]
    lines += ["", *significance_lines(finals), ""]
    slug = _slug(f"{grid}_{budget}")
    png = img_dir / f"{slug}_success.png"
    if success_curves(arms, png, f"{title}: success vs update (seeds pooled)"):
        lines += [f"![success vs update, {title}]({_rel(png, doc_dir)})", ""]
    lines += diagnosis_lines(arms, finals)
    for path in diagnosis_plots(arms, img_dir / slug, title):
        lines += [f"![{path.stem}]({_rel(path, doc_dir)})", ""]
    png = img_dir / f"{slug}_perturbations.png"
    return lines + perturbation_lines(arms, png, _rel(png, doc_dir), title)


def _task_order(key: str) -> tuple:
    head, _, tail = key.rpartition("/")
    return (head, int(tail)) if tail.isdigit() else (head, 0, tail)


def per_task_lines(arms: dict[str, list[dict]], steps: dict[str, int]) -> list[str]:
    """Per arm, the successes of each task at the arm's final checkpoint (`steps`; seeds pooled): whether a
    success rate comes from every task or from one or two. Only arms whose every seed logged per-task counts;
    none for a single-task grid."""
    rows: dict[str, tuple[int, dict[str, list[int]]]] = {}
    for label, step in steps.items():
        recs = arms[label]
        evals = [e for r in recs for e in r["evals"] if int(e["step"]) == step]
        if len(evals) != len(recs) or not all(e.get("per_task") for e in evals):
            continue
        pooled: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for e in evals:
            for task, (k, n) in e["per_task"].items():
                pooled[task][0] += int(k)
                pooled[task][1] += int(n)
        rows[label] = (step, dict(pooled))
    tasks = sorted({t for _, per in rows.values() for t in per}, key=_task_order)
    if len(tasks) < 2:
        return []
    lines = [
        "",
        "Per task at the same checkpoint (successes/episodes, seeds pooled; 'tasks solved' counts tasks with at "
        "least one success):",
        "",
        "| arm | update | " + " | ".join(f"task {t}" for t in tasks) + " | tasks solved |",
        "|---|---|" + "---|" * (len(tasks) + 1),
    ]
    for label, (step, per) in rows.items():
        cells = [f"{per[t][0]}/{per[t][1]}" if t in per else "-" for t in tasks]
        solved = sum(1 for t in tasks if t in per and per[t][0] > 0)
        lines.append(f"| {label} | {step} | " + " | ".join(cells) + f" | {solved}/{len(tasks)} |")
    return lines


def significance_lines(finals: dict[str, tuple[int, int]]) -> list[str]:
    if len(finals) < 2:
        return ["_Significance: fewer than two evaluated arms in this table._"]
    comps = compare_all(finals, ALPHA)
    sig = [c for c in comps if c.significant]
    head = (
        f"Significance: two-sided {PROPORTION_TEST} on the pooled episodes of each pair at its last "
        f"common checkpoint, Holm-corrected over the {len(comps)} pair(s) of this table, alpha {ALPHA}; seeds pooled as "
        "independent episodes (between-seed variance ignored)."
    )
    if not sig:
        return [head + " **No difference is significant.**"]
    body = [
        f"- **{c.better}** > **{c.worse}**: {_pct(max(c.rate_a, c.rate_b))}% vs {_pct(min(c.rate_a, c.rate_b))}%, "
        f"p = {c.p:.2g} (Holm {c.p_holm:.2g})"
        for c in sig
    ]
    rest = len(comps) - len(sig)
    return [head, "", *body, "", f"The other {rest} pair(s) are not significant." if rest else ""]


def provenance_lines(records: list[dict]) -> list[str]:
    lines = [
        "| cell | levels | status | update | success | wall time | date | commit | machine | command |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in records:
        last = (r.get("evals") or [None])[-1]
        score = f"{last['successes']}/{last['episodes']}" if last else r.get("error", "-")
        step = last["step"] if last else r.get("trained_steps", "-")
        dirty = " (uncommitted changes)" if r.get("dirty") else ""
        levels = " ".join(f"{a}={v}" for a, v in r["cell"].items())
        lines.append(
            f"| `{r['hash']}` | {levels} | {r['status']} | {step} | {score} | {_hours(float(r['wall_s']))} | "
            f"{r['date']} | `{r['commit']}`{dirty} | {machine_label(r)} | `{r['command']}` |"
        )
    return lines


def render(store_path: Path, out: Path, img_dir: Path, headline: Path | None = None) -> str:
    """The markdown text of the results doc (and its PNGs written under img_dir); `headline`: the file of the
    paper-comparison section that opens the doc (envs/sweep/headline.py), None for none."""
    spec = load_headline(headline) if headline is not None else None
    records = list(ResultsStore(store_path).latest().values())
    lines = [
        "# Results",
        "",
        f"Generated by `pion-results` from `{store_path.as_posix()}` ({len(records)} cell(s)); do not edit by hand. "
        "Cells are run by `pion-sweep <grid>` (configs/sweep/); re-running a grid skips finished cells.",
        "",
    ]
    if not records:
        return "\n".join([*lines, "_The store is empty: no cell has finished yet._", ""])
    if spec is not None:
        lines += headline_lines(spec, records, img_dir, lambda p: _rel(p, out.parent))
    by_grid: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        by_grid[r["grid"]].append(r)
    for grid, recs in sorted(by_grid.items()):
        lines += [f"## {grid}", ""]
        described = sorted((r for r in recs if r.get("description")), key=lambda r: r["date"])
        desc = described[-1]["description"] if described else ""  # the grid file's latest wording
        if desc:
            lines += [desc.strip(), ""]
        evaluated = [r for r in recs if r["status"] in ("done", "partial")]
        tables: dict[str, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
        for r in evaluated:
            tables[r["cell"].get(TABLES, "")][arm_label(r["cell"])].append(r)
        for budget, arms in tables.items():
            lines += budget_section(grid, budget, dict(arms), img_dir, out.parent)
        lines += ["#### Provenance (every cell, latest record)", "", *provenance_lines(recs), ""]
    return "\n".join(lines)


def write_report(
    store_path: str | Path, out: str | Path, img_dir: str | Path, headline: str | Path | None = None
) -> Path:
    out, img_dir = Path(out), Path(img_dir)
    text = render(Path(store_path), out, img_dir, Path(headline) if headline else None)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    return out
