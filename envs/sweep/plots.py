"""The results doc's figures (PNG, matplotlib Agg): success vs step per arm, and the diagnosis curves.

Every function takes the arms of one table (label -> the store records of its seeds) and writes one PNG.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from vla.stats import wilson_interval


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def pooled_curve(records: list[dict]) -> list[tuple[int, int, int]]:
    """(step, successes, episodes) pooled over seeds, at the steps every record evaluated."""
    per_step: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for r in records:
        for e in r.get("evals", []):
            per_step[int(e["step"])].append((int(e["successes"]), int(e["episodes"])))
    return [
        (step, sum(k for k, _ in v), sum(n for _, n in v))
        for step, v in sorted(per_step.items())
        if len(v) == len(records)
    ]


def success_curves(arms: dict[str, list[dict]], png: Path, title: str) -> bool:
    """Success rate with Wilson 95% bars vs update, one line per arm; False when nothing was evaluated."""
    curves = {label: pooled_curve(recs) for label, recs in arms.items()}
    if not any(curves.values()):
        return False
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    for label, pts in curves.items():
        if not pts:
            continue
        steps = [s for s, _, _ in pts]
        rate = [100 * k / n for _, k, n in pts]
        ci = [wilson_interval(k, n) for _, k, n in pts]
        # clipped at 0: at k = 0 or k = n the Wilson bound equals the rate up to rounding (matplotlib refuses < 0)
        err = [[max(0.0, r - 100 * lo) for r, (lo, _) in zip(rate, ci, strict=True)],
               [max(0.0, 100 * hi - r) for r, (_, hi) in zip(rate, ci, strict=True)]]  # fmt: skip
        ax.errorbar(steps, rate, yerr=err, marker="o", capsize=3, lw=1.2, label=label)
    ax.set_xlabel("update")
    ax.set_ylabel("success % (Wilson 95% CI)")
    ax.set_ylim(-2, 102)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return True


def _series(records: list[dict], field: str) -> dict[str, list[tuple[int, float]]]:
    """{quantity: [(step, mean over seeds)]} from the records' logged rows (`spectral`, `zero_update_frac`)."""
    acc: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in records:
        for row in r.get(field) or []:
            for k, v in row.items():
                if k != "step" and isinstance(v, int | float):
                    acc[k][int(row["step"])].append(float(v))
    return {k: [(s, sum(v) / len(v)) for s, v in sorted(d.items())] for k, d in sorted(acc.items())}


def diagnosis_plots(arms: dict[str, list[dict]], png_prefix: Path, title: str) -> list[Path]:
    """Effective rank of gradients / updates per bucket and the zero-update fraction over updates (when logged)."""
    panels = {
        "grad_rank": ("spectral", "grad_effective_rank", "gradient effective rank"),
        "update_rank": ("spectral", "update_effective_rank", "update effective rank"),
        "zero_update": ("zero_update_frac", "", "fraction of exactly-zero updates"),
    }
    written = []
    for suffix, (field, ending, ylabel) in panels.items():
        lines = {
            f"{label}: {q.removesuffix('/' + ending) if ending else q}": pts
            for label, recs in arms.items()
            for q, pts in _series(recs, field).items()
            if q.endswith(ending)
        }
        if not lines:
            continue
        plt = _plt()
        fig, ax = plt.subplots(figsize=(7.0, 4.0))
        for name, pts in lines.items():
            ax.plot([s for s, _ in pts], [v for _, v in pts], marker=".", lw=1, label=name)
        ax.set_xlabel("update")
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6, ncol=2)
        fig.tight_layout()
        png = png_prefix.with_name(f"{png_prefix.name}_{suffix}.png")
        png.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(png, dpi=110)
        plt.close(fig)
        written.append(png)
    return written
