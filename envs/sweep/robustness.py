"""The results doc's perturbation table: each arm's final policy under the LIBERO-Plus-style categories.

Rows are arms (the seeds that have perturbation results pooled), columns the clean success at the same checkpoint
(on exactly the perturbed init states where the record holds that count, else on all held-out ones) and each
perturbation category (all severities of the grid's spec pooled), as successes/episodes and percent, plus the mean over categories
(the paper's "Total" column is the success over all perturbed episodes, which equals that mean when every
category has the same number of episodes, as here). A grouped bar chart with Wilson 95% bars goes next to it.
"""

from __future__ import annotations

from pathlib import Path

from envs.sweep.plots import save_figure, wilson_bars
from envs.sweep.significance import PROPORTION_TEST, compare_all


def _pooled(records: list[dict]) -> dict | None:
    """{"step", "seeds", "clean": (k, n), "categories": {cat: (k, n)}, "spec"} over the arm's seeds that have
    perturbation results (the clean success of the same seeds at the same checkpoint); None when none has."""
    records = [r for r in records if r.get("perturb")]
    results = [r["perturb"] for r in records]
    if not results:
        return None
    if len({(p["step"], tuple(p["categories"])) for p in results}) != 1:
        return None  # seeds perturbed at different checkpoints or categories: not poolable
    step = results[0]["step"]
    cats: dict[str, list[int]] = {c: [0, 0] for c in results[0]["categories"]}
    clean = [0, 0]
    paired = all("clean" in p for p in results)  # clean success on exactly the perturbed init states
    for r, p in zip(records, results, strict=True):
        for c, v in p["categories"].items():
            cats[c][0] += int(v["successes"])
            cats[c][1] += int(v["episodes"])
        if paired:
            clean[0] += int(p["clean"]["successes"])
            clean[1] += int(p["clean"]["episodes"])
            continue
        for e in r.get("evals", []):  # older records: the whole clean evaluation at that checkpoint
            if int(e["step"]) == step:
                clean[0] += int(e["successes"])
                clean[1] += int(e["episodes"])
    seeds = ", ".join(r["cell"].get("seed", "-") for r in records)
    return {"step": step, "seeds": seeds, "clean": tuple(clean), "categories": {c: tuple(v) for c, v in cats.items()},
            "spec": results[0]["spec"], "paired": paired}  # fmt: skip


def _total(p: dict, cats: list[str]) -> tuple[int, int]:
    return sum(p["categories"][c][0] for c in cats), sum(p["categories"][c][1] for c in cats)


def _significance(totals: dict[str, tuple[int, int]], alpha: float = 0.05) -> str:
    """One sentence: which arms differ on all perturbed episodes pooled (envs.sweep.significance, Holm)."""
    if len(totals) < 2:
        return "_Significance: fewer than two perturbed arms._"
    comps = compare_all(totals, alpha)
    sig = [f"{c.better} > {c.worse} (p = {c.p:.2g}, Holm {c.p_holm:.2g})" for c in comps if c.significant]
    head = (
        f"Significance on all perturbed episodes pooled ({PROPORTION_TEST}; Holm over {len(comps)} pair(s), "
        f"alpha {alpha}): "
    )
    return head + ("; ".join(sig) if sig else "**no difference is significant**") + "."


def _cell(k: int, n: int) -> str:
    return f"{k}/{n} ({100 * k / n:.0f}%)" if n else "-"


def perturbation_lines(arms: dict[str, list[dict]], png: Path, rel_png: str, title: str) -> list[str]:
    """Markdown for the table (and the PNG written to `png`); [] when no arm has perturbation results."""
    pooled = {label: p for label, recs in arms.items() if (p := _pooled(recs)) is not None}
    if not pooled:
        return []
    spec = next(iter(pooled.values()))["spec"]
    cats = [
        c for c in spec["categories"] if c in next(iter(pooled.values()))["categories"]
    ]  # the spec's order
    sev = ", ".join(str(s) for s in spec["severities"])
    lines = [
        f"#### Perturbations ({title})",
        "",
        f"Final checkpoint of each arm on the same held-out init states under the built-in LIBERO-Plus-style "
        f"suite (`envs/eval/perturb`), severity {sev}; seeds pooled. Grid key `perturb` "
        f"(trials per task: {spec['trials_per_task'] or 'all held-out'}). Clean: the same checkpoint unperturbed "
        + (
            "on the same init states."
            if spec["trials_per_task"] is None or all(p["paired"] for p in pooled.values())
            else "on all its held-out init states."
        ),
        "",
        "| arm | seeds | update | clean | " + " | ".join(cats) + " | mean of categories |",
        "|---|---|---|---|" + "---|" * len(cats) + "---|",
    ]
    for label, p in pooled.items():
        ks = [p["categories"][c] for c in cats]
        k_all, n_all = sum(k for k, _ in ks), sum(n for _, n in ks)
        lines.append(
            f"| {label} | {p['seeds']} | {p['step']} | {_cell(*p['clean'])} | "
            + " | ".join(_cell(k, n) for k, n in ks)
            + f" | {_cell(k_all, n_all)} |"
        )
    lines += ["", _significance({label: _total(p, cats) for label, p in pooled.items()})]
    missing = [label for label in arms if label not in pooled]
    if missing:
        lines += ["", f"Not perturbed yet: {', '.join(missing)}."]
    _bar_chart(pooled, cats, png, title)
    return [*lines, "", f"![perturbations, {title}]({rel_png})", ""]


def _bar_chart(pooled: dict[str, dict], cats: list[str], png: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = ["clean", *cats]
    fig, ax = plt.subplots(figsize=(8.0, 3.8))
    width = 0.8 / len(pooled)
    for i, (label, p) in enumerate(pooled.items()):
        points = [p["clean"], *(p["categories"][c] for c in cats)]
        rate, err = wilson_bars(points)
        xs = [j + (i - (len(pooled) - 1) / 2) * width for j in range(len(columns))]
        ax.bar(xs, rate, width, yerr=err, capsize=2, label=f"{label} (update {p['step']})")
    ax.set_xticks(range(len(columns)), columns, fontsize=8)
    ax.set_ylabel("success % (Wilson 95% CI)")
    ax.set_ylim(0, 128)  # room above the bars for the legend
    ax.set_yticks(range(0, 101, 20))
    ax.set_title(f"{title}: final policy under perturbations", fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, loc="upper center", ncol=min(3, len(pooled)))
    save_figure(fig, png)
