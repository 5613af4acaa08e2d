"""summary.json -> PNG: per-task success with Wilson 95% error bars (and per category when perturbed)."""

from __future__ import annotations

from pathlib import Path


def plot_summary(summary: dict, path: str | Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [(f"{t['suite'].removeprefix('libero_')}/{t['task_id']}", t) for t in summary["tasks"]]
    rows += [(f"{s} (all)", st) for s, st in summary["suites"].items()]
    rows.append(("overall", summary["overall"]))
    cats = summary.get("categories", {})
    panels = 2 if cats else 1
    fig, axes = plt.subplots(
        1, panels, figsize=(max(6, 0.45 * len(rows)) + 4 * (panels - 1), 4.2), squeeze=False
    )

    def bars(ax, items, title):
        names = [n for n, _ in items]
        rate = [100 * (s["success_rate"] or 0) for _, s in items]
        lo = [r - 100 * s["ci95"][0] for r, (_, s) in zip(rate, items)]
        hi = [100 * s["ci95"][1] - r for r, (_, s) in zip(rate, items)]
        colours = ["#4c72b0" if "(all)" not in n and n != "overall" else "#dd8452" for n in names]
        ax.bar(range(len(names)), rate, yerr=[lo, hi], capsize=3, color=colours)
        ax.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=8)
        ax.set_ylim(0, 105)
        ax.set_ylabel("success % (Wilson 95% CI)")
        ax.set_title(title, fontsize=10)

    o = summary["overall"]
    bars(axes[0][0], rows, f"success per task: {o['successes']}/{o['episodes']} episodes")
    if cats:
        bars(axes[0][1], list(cats.items()), "success per perturbation category")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
