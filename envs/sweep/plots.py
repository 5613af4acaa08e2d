"""The results doc's success figure (PNG, matplotlib Agg): success vs step per arm (diagnosis: diagnosis.py).

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


def save_figure(fig, png: Path) -> Path:
    """Lay out, write (110 dpi, parent folders created) and close a figure: every PNG of the results docs."""
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)
    _plt().close(fig)
    return png


def wilson_bars(points: list[tuple[int, int]]) -> tuple[list[float], list[list[float]]]:
    """(success %, [lower, upper] Wilson 95% bar lengths) of (successes, episodes) points; no episodes: 0, no bar.
    Clipped at 0: at k = 0 or k = n the Wilson bound equals the rate up to rounding (matplotlib refuses < 0)."""
    rate = [100 * k / n if n else 0.0 for k, n in points]
    ci = [wilson_interval(k, n) if n else (0.0, 0.0) for k, n in points]
    err = [[max(0.0, r - 100 * lo) for r, (lo, _) in zip(rate, ci, strict=True)],
           [max(0.0, 100 * hi - r) for r, (_, hi) in zip(rate, ci, strict=True)]]  # fmt: skip
    return rate, err


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
        rate, err = wilson_bars([(k, n) for _, k, n in pts])
        ax.errorbar(steps, rate, yerr=err, marker="o", capsize=3, lw=1.2, label=label)
    ax.set_xlabel("update")
    ax.set_ylabel("success % (Wilson 95% CI)")
    ax.set_ylim(-2, 102)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    save_figure(fig, png)
    return True
