"""The results doc's first section: the paper's optimizer comparison next to ours, read from the store.

A headline file (configs/results/headline.yaml) lists tables. Each table has rows (optimizers) and, per row, one
cell selector per budget column: the grid and the levels its store records must have (every matching record is
one seed; seeds are pooled). A column's number is the pooled success at exactly that update, with its Wilson 95%
CI, next to the paper's number at the same update (`paper:`). Below each table: every pair of rows compared per
column (two-proportion z-test or, for small counts, Fisher's exact test; Holm over the column's pairs, alpha
0.05), and one PNG with our success-vs-update curves, the other budgets' end points and the paper's points.

    title: The paper's optimizer comparison at CPU scale
    text: "what the reader must know"
    paper: {AdamW: {1500: "32.2"}, Pion: {500: "95.4", 1500: "100.0"}}
    tables:
      - title: Each optimizer at its own lr
        rows:
          AdamW: {500: {grid: object_task0_lr, optimizer: adamw, lr: 0.004}, 1500: {grid: object_task0_tuned, optimizer: adamw}}
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import yaml

from envs.sweep.plots import pooled_curve, save_figure, wilson_bars
from envs.sweep.significance import (
    PROPORTION_TEST,
    compare_all,
    pairwise,
    proportion_p,
    seed_permutation_p,
    smallest_seed_p,
)
from vla.stats import wilson_interval

ALPHA = 0.05


def load_headline(path: str | Path) -> dict:
    """The parsed headline file, checked: {title, text, paper, tables: [{title, rows: {label: {step: selector}}}]}."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"headline file {path} not found (pion-results headline='' to leave it out)")
    spec = yaml.safe_load(path.read_text()) or {}
    if not isinstance(spec, dict) or not isinstance(spec.get("tables"), list) or not spec["tables"]:
        raise ValueError(f"{path}: needs a non-empty 'tables' list")
    unknown = set(spec) - {"title", "text", "paper", "tables"}
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {sorted(unknown)}; keys are title, text, paper, tables")
    for i, table in enumerate(spec["tables"]):
        rows = table.get("rows") if isinstance(table, dict) else None
        if not isinstance(rows, dict) or not rows:
            raise ValueError(
                f"{path}: tables[{i}] needs a 'rows' mapping (row label -> {{update: selector}})"
            )
        for label, cols in rows.items():
            if not isinstance(cols, dict) or not cols:
                raise ValueError(f"{path}: tables[{i}].rows.{label} needs {{update: selector}}")
            for step, sel in cols.items():
                if not isinstance(step, int) or step <= 0:
                    raise ValueError(
                        f"{path}: tables[{i}].rows.{label}: column {step!r} is not a positive update"
                    )
                if not isinstance(sel, dict) or "grid" not in sel:
                    raise ValueError(
                        f"{path}: tables[{i}].rows.{label}.{step} needs a selector with a 'grid' key"
                    )
    paper = spec.get("paper") or {}
    if not isinstance(paper, dict) or any(not isinstance(v, dict) for v in paper.values()):
        raise ValueError(f"{path}: 'paper' maps a row label to {{update: success %}}")
    return spec


def select(records: list[dict], selector: dict) -> list[dict]:
    """The evaluated records of `selector['grid']` whose levels equal every other key of the selector."""
    levels = {k: str(v) for k, v in selector.items() if k != "grid"}
    return [
        r for r in records
        if r["grid"] == selector["grid"] and r["status"] in ("done", "partial")
        and all(str(r["cell"].get(k)) == v for k, v in levels.items())
    ]  # fmt: skip


def point_at(records: list[dict], step: int) -> tuple[int, int] | None:
    """(successes, episodes) pooled over the seeds at exactly `step`; None when not every seed got there."""
    for s, k, n in pooled_curve(records):
        if s == step:
            return k, n
    return None


def per_seed(records: list[dict], step: int) -> list[tuple[int, int]]:
    """(successes, episodes) of each record (seed) at `step`, in record order."""
    return [
        (int(e["successes"]), int(e["episodes"]))
        for r in records
        for e in r["evals"]
        if int(e["step"]) == step
    ]


def seed_disagreement(seeds: list[tuple[int, int]]) -> float | None:
    """p-value that the seeds share one success rate: the most different pair's two-proportion test, times the
    number of pairs (Bonferroni, capped at 1); None with fewer than two seeds."""
    if len(seeds) < 2:
        return None
    rates = sorted(seeds, key=lambda kn: kn[0] / kn[1] if kn[1] else 0.0)
    pairs = len(seeds) * (len(seeds) - 1) // 2
    return min(1.0, pairs * proportion_p(*rates[0], *rates[-1]))


def _fmt(point: tuple[int, int] | None, reached: int, n_records: int) -> tuple[str, str]:
    """(our number, its CI) of one column; without a pooled point, why: no cell yet, or how many of the cells
    (seeds) have been evaluated here (`reached`; the others are partial records, resumed by the next sweep run)."""
    if point is None:
        if not n_records:
            return "not run yet", "-"
        return f"partial: {reached} of {n_records} seed(s) evaluated here", "-"
    k, n = point
    lo, hi = wilson_interval(k, n)
    return f"{k}/{n} ({100 * k / n:.0f}%)", f"{100 * lo:.0f}–{100 * hi:.0f}"


def table_lines(table: dict, paper: dict, records: list[dict], png: Path, rel_png: str) -> list[str]:
    rows: dict[str, dict[int, dict]] = table["rows"]
    steps = sorted({s for cols in rows.values() for s in cols})
    head = (
        "| optimizer | " + " | ".join(f"{s} updates: ours | 95% CI | per seed | paper" for s in steps) + " |"
    )
    lines = [f"### {table.get('title', '')}".rstrip(), "", head, "|---|" + "---|---|---|---|" * len(steps)]
    points: dict[int, dict[str, tuple[int, int]]] = {s: {} for s in steps}
    seed_rates: dict[int, dict[str, list[float]]] = {s: {} for s in steps}
    picked: dict[str, dict[int, list[dict]]] = {}
    disagree: list[str] = []
    for label, cols in rows.items():
        cells = []
        picked[label] = {}
        for s in steps:
            recs = select(records, cols[s]) if s in cols else []
            picked[label][s] = recs
            pt = point_at(recs, s) if recs else None
            if pt is not None:
                points[s][label] = pt
            seeds = per_seed(recs, s)  # shown even for a partial column; compared only once all seeds are in
            ours, ci = _fmt(pt, len(seeds), len(recs)) if s in cols else ("-", "-")
            ref = (paper.get(label) or {}).get(s)
            if pt is not None and len(seeds) >= 2:
                seed_rates[s][label] = [k / n for k, n in seeds]
            shown = "; ".join(f"{k}/{n}" for k, n in seeds) or "-"
            cells.append(f"{ours} | {ci} | {shown} | {ref if ref is not None else '-'}")
            p = seed_disagreement(seeds) if pt is not None else None
            if p is not None and p < ALPHA:
                disagree.append(f"{label} at {s} updates ({shown}, p = {p:.2g})")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", *_significance(points), ""]
    seed_level = _seed_level(seed_rates)
    if seed_level:
        lines += [*seed_level, ""]
    if disagree:
        lines += [
            f"**Seeds disagree** (most different pair of seeds, {PROPORTION_TEST}, Bonferroni over the "
            f"pairs, alpha {ALPHA}): "
            + "; ".join(disagree)
            + ". Pooling treats their episodes as independent, so the "
            "CI and tests of these cells understate the uncertainty: more seeds are needed before reading them.",
            "",
        ]
    if _plot(picked, paper, png, table.get("title", "")):
        lines += [f"![{table.get('title', 'headline')}]({rel_png})", ""]
    return lines


def _significance(points: dict[int, dict[str, tuple[int, int]]]) -> list[str]:
    out = []
    for step, arms in points.items():
        if len(arms) < 2:
            continue
        comps = compare_all(arms, ALPHA)
        parts = [
            f"{c.better} {'>' if c.significant else 'vs'} {c.worse} "
            f"({100 * max(c.rate_a, c.rate_b):.0f}% vs {100 * min(c.rate_a, c.rate_b):.0f}%, p = {c.p:.2g}, "
            f"Holm {c.p_holm:.2g}{'' if c.significant else ', not significant'})"
            for c in comps
        ]
        out.append(f"- {step} updates: " + "; ".join(parts) + ".")
    if not out:
        return ["_Significance: fewer than two optimizers evaluated at any budget yet._"]
    return [
        f"Significance per budget (two-sided {PROPORTION_TEST} on pooled episodes, Holm over that "
        f"budget's pairs, alpha {ALPHA}; '>' marks a significant difference):",
        "",
        *out,
    ]


def _seed_level(rates: dict[int, dict[str, list[float]]]) -> list[str]:
    """Per budget, every pair of optimizers with ≥ 2 seeds each, compared seed by seed (exact permutation test on
    the mean per-seed success, Holm over the budget's pairs)."""
    out, floors = [], set()
    for step, arms in rates.items():
        parts = []
        for a, b, p, ph, sig in pairwise(arms, seed_permutation_p, ALPHA):
            ma, mb = (sum(arms[x]) / len(arms[x]) for x in (a, b))
            hi, lo = (a, b) if ma >= mb else (b, a)
            parts.append(
                f"{hi} {'>' if sig else 'vs'} {lo} (mean {100 * max(ma, mb):.0f}% vs {100 * min(ma, mb):.0f}% "
                f"over {len(arms[hi])} and {len(arms[lo])} seeds, p = {p:.2g}, Holm {ph:.2g}"
                f"{'' if sig else ', not significant'})"
            )
            floors.add((len(arms[a]), len(arms[b])))
        if not parts:
            continue
        out.append(f"- {step} updates: " + "; ".join(parts) + ".")
    if not out:
        return []
    floor = ", ".join(f"{a} + {b} seeds: {smallest_seed_p(a, b):.2g}" for a, b in sorted(floors))
    return [
        "Seed level (each seed's success rate is one observation, so the variance between seeds counts; exact "
        f"permutation test on the difference of mean per-seed success, Holm per budget, alpha {ALPHA}; the "
        f"smallest p this test can give is {floor}):",
        "",
        *out,
    ]


def _plot(picked: dict[str, dict[int, list[dict]]], paper: dict, png: Path, title: str) -> bool:
    """Per row: the longest budget's curve (solid, Wilson bars), shorter budgets' end points (squares), paper (dashed)."""
    if not any(recs for cols in picked.values() for recs in cols.values()):
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8.6, 3.8))
    for i, (label, cols) in enumerate(picked.items()):
        color = f"C{i}"
        longest = max(cols)
        pts = pooled_curve(cols[longest]) if cols[longest] else []
        if pts:
            rate, err = wilson_bars([(k, n) for _, k, n in pts])
            ax.errorbar([s for s, _, _ in pts], rate, yerr=err, color=color, marker="o", capsize=3, lw=1.2,
                        label=f"{label}, {longest}-update run")  # fmt: skip
        for step, recs in cols.items():
            pt = point_at(recs, step) if step != longest and recs else None
            if pt is not None:
                ax.plot([step], [100 * pt[0] / pt[1]], color=color, marker="s", ms=8, ls="none",
                        label=f"{label}, own {step}-update run")  # fmt: skip
        ref = {int(s): _number(v) for s, v in (paper.get(label) or {}).items() if _number(v) is not None}
        if ref:
            xs = sorted(ref)
            ax.plot(xs, [ref[x] for x in xs], color=color, ls="--", marker="o", mfc="none", alpha=0.7,
                    label=f"{label}, paper")  # fmt: skip
    ax.set_xlabel("update")
    ax.set_ylabel("success %")
    ax.set_ylim(-2, 102)
    ax.set_title("\n".join(textwrap.wrap(title, 100)), fontsize=8)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # outside: the curves fill the axes
    save_figure(fig, png)
    return True


def _number(value) -> float | None:
    try:
        return float(str(value).lstrip("≈~ "))
    except ValueError:
        return None


def headline_lines(spec: dict, records: list[dict], img_dir: Path, rel) -> list[str]:
    """Markdown of the headline section (PNG per table under img_dir); `rel` maps a PNG path to the doc's link."""
    lines = [f"## {spec.get('title', 'Headline')}", ""]
    if spec.get("text"):
        lines += [str(spec["text"]).strip(), ""]
    paper = spec.get("paper") or {}
    for i, table in enumerate(spec["tables"]):
        png = img_dir / f"headline_{i}.png"
        lines += table_lines(table, paper, records, png, rel(png))
    return lines
