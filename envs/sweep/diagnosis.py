"""The diagnosis at our scale (issue 13): spectra per VLA region and Pion's exactly-zero updates, per arm.

The trainer logs, every `spectral.every` updates, the mean effective rank of the gradients and of the applied
updates per `<optimizer>/<bucket>` (vla/train/hooks.py), and on log steps the fraction of Pion/Muon matrices
whose update was exactly zero. Here those rows become, for one results table:

- one figure per quantity (gradient rank, update rank) with a panel per region (vision, language, action head)
  and a line per arm, the line's label naming the optimizer that region ran under;
- one figure of the fraction of exactly-zero Pion updates over training;
- a table of the same quantities averaged over the logged steps and seeds, next to the arm's final success.

Records logged before the per-region split of the AdamW baseline hold a single `adamw/everything` bucket; they
get their own "all matrices" panel rather than being drawn as if they were one region.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from envs.sweep.plots import save_figure

REGIONS = {"vision": "vision", "language": "language", "action_head": "action head"}
WHOLE = {"everything": "all matrices (AdamW, logged as one group)"}
QUANTITIES = {"grad_rank": "grad_effective_rank", "update_rank": "update_effective_rank"}


def _series(records: list[dict], field: str) -> dict[str, list[tuple[int, float]]]:
    """{key: [(step, mean over seeds)]} from the records' logged rows (`spectral`, `zero_update_frac`)."""
    acc: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in records:
        for row in r.get(field) or []:
            for k, v in row.items():
                if k != "step" and isinstance(v, int | float):
                    acc[k][int(row["step"])].append(float(v))
    return {k: [(s, sum(v) / len(v)) for s, v in sorted(d.items())] for k, d in sorted(acc.items())}


def region_curves(records: list[dict], quantity: str) -> dict[str, tuple[str, list[tuple[int, float]]]]:
    """{region: (optimizer, [(step, value)])} for one arm and one logged quantity (e.g. grad_effective_rank)."""
    out = {}
    for key, pts in _series(records, "spectral").items():
        parts = key.split("/")
        if len(parts) == 3 and parts[2] == quantity and parts[1] in {**REGIONS, **WHOLE}:
            out[parts[1]] = (parts[0], pts)
    return out


def pion_zero_curves(records: list[dict]) -> dict[str, list[tuple[int, float]]]:
    """{pion bucket: [(step, fraction of its matrices whose update was exactly zero)]}."""
    return {k: v for k, v in _series(records, "zero_update_frac").items() if k.startswith("pion/")}


def _mean(pts: list[tuple[int, float]]) -> float:
    return sum(v for _, v in pts) / len(pts)


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, png: Path) -> Path:
    save_figure(fig, png)
    return png


def diagnosis_plots(arms: dict[str, list[dict]], png_prefix: Path, title: str) -> list[Path]:
    """Rank-per-region figures and the Pion zero-update figure; only those with logged data are written."""
    written = []
    for suffix, quantity in QUANTITIES.items():
        curves = {label: region_curves(recs, quantity) for label, recs in arms.items()}
        panels = [r for r in (*REGIONS, *WHOLE) if any(r in c for c in curves.values())]
        if not panels:
            continue
        colour = {label: f"C{i % 10}" for i, label in enumerate(arms)}  # one colour per arm in every panel
        plt = _plt()
        fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.8), squeeze=False)
        for ax, region in zip(axes[0], panels, strict=True):
            for label, per_region in curves.items():
                if region in per_region:
                    opt, pts = per_region[region]
                    xs, ys = [s for s, _ in pts], [v for _, v in pts]
                    ax.plot(xs, ys, marker=".", lw=1, color=colour[label], label=f"{label} ({opt})")
            ax.set_title({**REGIONS, **WHOLE}[region], fontsize=9)
            ax.set_xlabel("update")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=6)
        axes[0][0].set_ylabel(quantity.replace("_", " "))
        fig.suptitle(title, fontsize=9)
        written.append(_save(fig, png_prefix.with_name(f"{png_prefix.name}_{suffix}.png")))
    zero = {label: pion_zero_curves(recs) for label, recs in arms.items()}
    if any(zero.values()):
        plt = _plt()
        fig, ax = plt.subplots(figsize=(6.4, 3.8))
        for label, per_bucket in zero.items():
            for bucket, pts in per_bucket.items():
                name = label if len(per_bucket) == 1 else f"{label}: {bucket}"
                ax.plot([s for s, _ in pts], [100 * v for _, v in pts], marker=".", lw=1, label=name)
        ax.set_xlabel("update")
        ax.set_ylabel("% of Pion matrices with an exactly-zero update")
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
        written.append(_save(fig, png_prefix.with_name(f"{png_prefix.name}_zero_update.png")))
    return written


def diagnosis_lines(arms: dict[str, list[dict]], finals: dict[str, tuple[int, int]]) -> list[str]:
    """Markdown table: per arm, the mean (over logged steps and seeds) rank per region and Pion zero updates."""
    rows = []
    for label, recs in arms.items():
        ranks = {q: region_curves(recs, q) for q in QUANTITIES.values()}
        if not any(ranks.values()):
            continue
        cells = []
        for q in QUANTITIES.values():
            for region in REGIONS:
                got, whole = ranks[q].get(region), ranks[q].get("everything")
                if got:
                    cells.append(f"{_mean(got[1]):.1f} ({got[0]})")
                else:
                    cells.append(f"{_mean(whole[1]):.1f} (all matrices)" if whole else "-")
        zero = [v for pts in pion_zero_curves(recs).values() for _, v in pts]
        zero_txt = f"{100 * sum(zero) / len(zero):.1f}%" if zero else "-"
        k, n = finals.get(label, (0, 0))
        success = f"{k}/{n}" if n else "-"
        rows.append(f"| {label} | {success} | " + " | ".join(cells) + f" | {zero_txt} |")
    if not rows:
        return []
    names = " | ".join(REGIONS.values())
    return [
        "Diagnosis, averaged over the logged updates and seeds (effective rank = exp of the entropy of the "
        "normalised singular values; the region's optimizer in brackets; 'all matrices' marks an AdamW arm "
        "logged as one group, before the per-region split):",
        "",
        f"| arm | success | grad rank: {names.replace(' | ', ' | grad rank: ')} | "
        f"update rank: {names.replace(' | ', ' | update rank: ')} | Pion zero updates |",
        "|---|---|" + "---|" * (2 * len(REGIONS)) + "---|",
        *rows,
        "",
    ]
