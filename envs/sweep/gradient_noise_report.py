"""docs/gradient_noise.md from docs/results/gradient_noise.jsonl (records of envs/sweep/gradient_noise.py).

One section per (cell, step), latest record of each: the cosine between each optimizer's update direction and the
held-out mean gradient, per region and averaging level, Pion's zero-update share, and one PNG: the signal share
of single-batch singular directions against σ/‖X‖_F with Pion's cut-off and, per region, the normalised
singular-value spectra of the gradients and of each optimizer's update direction. Byte-stable for a given store.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from envs.sweep.gradient_noise import REGIONS
from envs.sweep.plots import save_figure
from envs.sweep.store import append_jsonl, machine_label, provenance, read_jsonl

FILTER_NAMES = {
    "sgd": "SGD (X)",
    "adamw": "AdamW 1st step (sign X)",
    "muon": "Muon (NS5)",
    "pion": "Pion (k_p 0)",
}


def append_record(store: str | Path, record: dict, argv: list[str]) -> None:
    """Append one measured (cell, step) with its provenance; a cut-short last line is dropped first."""
    append_jsonl(store, {**record, **provenance(), "command": " ".join(argv)})


def load_records(store: str | Path) -> list[dict]:
    """The latest record of each (grid, hash, step), in first-measured order."""
    latest = {(r["grid"], r["hash"], r["step"]): r for r in read_jsonl(store)}
    return list(latest.values())


def _label(rec: dict) -> str:
    levels = ", ".join(f"{k}={v}" for k, v in rec["levels"].items())
    return f"{rec['grid']} `{rec['hash']}` ({levels}), update {rec['step']}"


def record_lines(rec: dict, png: Path, rel_png: str) -> list[str]:
    regions = {r: rec["regions"][r] for r in REGIONS if r in rec["regions"]}
    levels = sorted(next(iter(regions.values()))["cos"]["sgd"], key=int)
    head = " | ".join(f"n = {lv}" for lv in levels)
    lines = [f"### {_label(rec)}", ""]
    lines += [f"| region (matrices) | update direction | {head} |", "|---|---|" + "---|" * len(levels)]
    for region, r in regions.items():
        for f, name in FILTER_NAMES.items():
            cells = " | ".join(f"{r['cos'][f][lv]:+.3f}" for lv in levels)
            lines.append(f"| {region} ({r['matrices']}) | {name} | {cells} |")
        zero = " | ".join(f"{100 * r['pion_zero'][lv]:.0f}%" for lv in levels)
        lines.append(f"| {region} ({r['matrices']}) | Pion: exactly-zero updates | {zero} |")
    lines += [
        "",
        f"Cosine between the update direction made from the mean of n minibatch gradients (batch "
        f"{rec['batch_size']}) and the mean of {rec['batches'] // 2} other minibatch gradients, averaged over "
        f"inputs and matrices. Checkpoint `{rec['checkpoint']}`; {rec['wall_s']} s on {machine_label(rec)}, "
        f"{rec['date']}, commit `{rec['commit']}`{' (uncommitted changes)' if rec.get('dirty') else ''}: "
        f"`{rec['command']}`.",
        "",
    ]
    if any("spectra" in r for r in regions.values()):
        lines += [
            "Spectra panels: the leading singular values σ_i / ‖M‖_F (averaged over inputs and matrices) of the "
            "single-batch gradient, the mean of n gradients, the held-out reference, and the AdamW, Muon and Pion "
            "update directions made from one batch. A flat line is a whitened update (Muon); Pion keeps the "
            "directions above its cut-off and drops the tail (below the panel's 1e-4 floor; an all-zero update "
            "counts as zeros).",
            "",
        ]
    _plot(rec, png)
    return [*lines, f"![signal share and spectra, {_label(rec)}]({rel_png})", ""]


def summary_lines(records: list[dict]) -> list[str]:
    """One row per record: the action head's single-batch cosines and Pion's over Muon's."""
    lines = [
        "## Summary: action head, single minibatch (n = 1)",
        "",
        "| checkpoint | " + " | ".join(FILTER_NAMES.values()) + " | Pion / Muon |",
        "|---|" + "---|" * (len(FILTER_NAMES) + 1),
    ]
    for rec in records:
        head = rec["regions"].get("action_head")
        if head is None:
            continue
        cos = {f: head["cos"][f]["1"] for f in FILTER_NAMES}
        ratio = f"{cos['pion'] / cos['muon']:.2f}x" if cos["muon"] > 0 else "-"
        lines.append(f"| {_label(rec)} | " + " | ".join(f"{c:+.3f}" for c in cos.values()) + f" | {ratio} |")
    return [*lines, "", "## Per checkpoint", ""]


def _plot(rec: dict, png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    regions = [r for r in REGIONS if r in rec["regions"]]
    with_spectra = [r for r in regions if "spectra" in rec["regions"][r]]
    if with_spectra:
        fig, axes = plt.subplots(2, 2, figsize=(11, 7.2))
        ax = axes[0, 0]
        for spec_ax, region in zip(axes.flat[1:], with_spectra, strict=False):
            _plot_spectra(spec_ax, region, rec["regions"][region]["spectra"], rec["pion_cutoff"])
    else:
        fig, ax = plt.subplots(figsize=(6.4, 3.6))
    for i, region in enumerate(regions):
        # bin centres on a log axis (the first bin starts at 0: its centre is half its upper edge)
        pts = [(math.sqrt(lo * hi) if lo > 0 else hi / 2, y, n) for lo, hi, y, n in rec["regions"][region]["share"]
               if y is not None]  # fmt: skip
        if pts:
            ax.plot([x for x, _, _ in pts], [y for _, y, _ in pts], marker="o", color=f"C{i}", label=region)
    ax.axvline(rec["pion_cutoff"], color="k", ls="--", lw=1, label=f"Pion cut-off ({rec['pion_cutoff']:.2f})")
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(NullFormatter())  # decade labels only
    ax.set_xlabel("σ_i / ‖X‖_F of single-batch gradient directions (bin centre)")
    ax.set_ylabel("signal share Σ u_iᵀ R v_i / Σ σ_i")
    ax.set_title(f"{rec['grid']} {rec['hash']} ({', '.join(map(str, rec['levels'].values()))}), "
                 f"update {rec['step']}", fontsize=9)  # fmt: skip
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    if with_spectra:
        fig.tight_layout()
    save_figure(fig, png)


SPECTRUM_STYLE = {  # input or filter -> (label, line style)
    "gradient n=1": ("gradient, 1 batch", "-"),
    "reference": ("held-out mean gradient", "-"),
    "adamw": ("AdamW 1st step (sign)", ":"),
    "muon": ("Muon (NS5)", "--"),
    "pion": ("Pion (k_p 0)", "-."),
}


SPECTRUM_FLOOR = 1e-4


def _plot_spectra(ax, region: str, spectra: dict, cutoff: float) -> None:
    """One region's normalised spectra on a log axis, Pion's cut-off as a horizontal line."""
    for i, (kind, values) in enumerate(spectra.items()):
        # the one kind not in the table is the mean of K/2 gradients, "gradient n=<K/2>"
        label, ls = SPECTRUM_STYLE.get(kind, (f"gradient, mean of {kind.rpartition('=')[2]} batches", "-"))
        pts = [(j + 1, v) for j, v in enumerate(values) if v > 0]
        if pts:
            ax.plot([x for x, _ in pts], [y for _, y in pts], ls=ls, color=f"C{i}", lw=1.4, label=label)
    ax.axhline(cutoff, color="k", ls="--", lw=0.8, label="Pion cut-off (on its input)")
    ax.set_yscale("log")
    ax.set_ylim(SPECTRUM_FLOOR, 1.5)  # Pion's dropped tail (~1e-8) falls off the bottom
    ax.set_xlabel("singular direction i")
    ax.set_ylabel("σ_i / ‖M‖_F")
    ax.set_title(f"{region}: normalised spectra", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6)


def render(store: str | Path, out: Path, img_dir: Path) -> str:
    records = load_records(store)
    lines = [
        "# Gradient noise and the update directions of AdamW, Muon and Pion",
        "",
        f"Generated by `python -m envs.sweep.gradient_noise` from `{Path(store).as_posix()}` ({len(records)} "
        "record(s)); do not edit by hand. Method: the docstring of `envs/sweep/gradient_noise.py`. The paper's "
        "mechanism predicts that, in the action head, Pion's update follows the held-out gradient better than "
        "Muon's, because the directions below Pion's cut-off carry mostly noise.",
        "",
    ]
    if not records:
        return "\n".join([*lines, "_No record yet._", ""])
    lines += summary_lines(records)
    for rec in records:
        png = img_dir / f"{rec['grid']}_{rec['hash']}_{rec['step']}.png"
        lines += record_lines(rec, png, Path(os.path.relpath(png, out.parent)).as_posix())
    return "\n".join(lines)


def write_doc(store: str | Path, out: str | Path, img_dir: str | Path | None = None) -> Path:
    """The doc at `out`, its PNGs under img_dir (default: <out's folder>/img/gradient_noise)."""
    out = Path(out)
    text = render(store, out, Path(img_dir) if img_dir else out.parent / "img" / "gradient_noise")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    return out
