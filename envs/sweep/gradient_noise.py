"""Does each optimizer's update follow the gradient's signal? The paper's mechanism, measured on a sweep checkpoint.

The paper explains Pion > Muon by the action head's noisy, low-effective-rank minibatch gradients: Muon's
whitening lifts every singular direction to 1, noise included; Pion's high-pass keeps the dominant ones. Both
halves of that claim can be measured at our scale. At a stored checkpoint of a sweep cell, with the cell's own
data, processor (augmentation on) and batch size:

1. K minibatch gradients G_1..G_K of every weight matrix (no update is applied). The second half gives the
   reference R (their mean: the signal, up to the noise of K/2 batches, which is independent of the first half).
2. The inputs: the first half's gradients one at a time (n = 1), averaged by 4 (n = 4, roughly the noise a
   short momentum leaves) and all together (n = K/2).
3. For each input X and filter f (SGD: X; AdamW's first step: sign X; Muon: NS5; Pion: k_p 0), the cosine
   between f(X) and R, averaged over inputs and then over the matrices of each region (vision / language /
   action head). A Pion update that is exactly zero scores 0 and is counted.
4. The signal share of the singular directions of a single-batch gradient X = Σ σ_i u_i v_iᵀ, binned by
   σ_i / ‖X‖_F (the filters' input scale; Pion passes what lies above its cut-off, ≈ 0.8 for k_p 0):
   Σ u_iᵀ R v_i / Σ σ_i over the directions of the bin (≈ 1: signal; ≈ 0: noise).
5. The singular-value spectra σ_i / ‖M‖_F (the first SPECTRUM_LEN, averaged over inputs and then over the
   matrices of each region) of the single-batch gradient, the n = K/2 mean, the reference, and the AdamW, Muon
   and Pion update directions made from a single batch: how flat each optimizer makes the spectrum it applies.

    python -m envs.sweep.gradient_noise object_task0_tuned <cell hash> [steps=500,1500] [batches=32]

Each (cell, step) appends one record to docs/results/gradient_noise.jsonl (with command, commit, machine, date)
and docs/gradient_noise.md + its PNGs are regenerated from every record (envs/sweep/gradient_noise_report.py).
"""

from __future__ import annotations

import sys
import time

import torch

from vla.optim.low_rank import filter_cutoff
from vla.optim.newton_schulz import newton_schulz, pion_schedule

REGIONS = ("vision", "language", "action_head")
FILTERS = ("sgd", "adamw", "muon", "pion")
SPECTRUM_LEN = 32  # leading singular values kept per matrix for the spectra
SHARE_BINS = (
    0.0,
    0.01,
    0.02,
    0.05,
    0.1,
    0.2,
    0.4,
    0.6,
    0.8,
    1.01,
)  # σ / ‖X‖_F bins of the signal-share curve


def apply_filter(name: str, x: torch.Tensor) -> torch.Tensor:
    """The update direction each optimizer makes of one input matrix (float32 Newton–Schulz, no momentum)."""
    if name == "sgd":
        return x
    if name == "adamw":  # Adam's first step, m / sqrt(v) = g / |g|
        return torch.sign(x)
    if name == "muon":
        return newton_schulz(x, "muon", compute_dtype=torch.float32)
    if name == "pion":
        return newton_schulz(x, pion_schedule(0), compute_dtype=torch.float32)
    raise ValueError(f"unknown filter {name!r}; filters are {FILTERS}")


def _cos(a: torch.Tensor, b: torch.Tensor) -> float:
    na, nb = a.norm(), b.norm()
    return 0.0 if na == 0 or nb == 0 else float((a * b).sum() / (na * nb))


def normalised_spectrum(x: torch.Tensor, n: int = SPECTRUM_LEN) -> list[float]:
    """The first n (at most) singular values of x over its Frobenius norm; all zeros for a zero matrix."""
    s = torch.linalg.svdvals(x.double())[:n]
    fro = x.double().norm()
    return (s / fro if fro > 0 else torch.zeros_like(s)).tolist()


def _mean_lists(rows: list[list[float]]) -> list[float]:
    """Index-wise mean of lists of different lengths (index i over the rows that have it)."""
    width = max((len(r) for r in rows), default=0)
    return [sum(r[i] for r in rows if len(r) > i) / sum(1 for r in rows if len(r) > i) for i in range(width)]


def matrix_alignment(samples: torch.Tensor, group: int = 4) -> dict:
    """One matrix's K gradient samples (K, m, n), K even ≥ 2·group: cosines per filter and averaging level,
    Pion's zero-update share per level, the (σ_i, u_iᵀ R v_i) / ‖X‖_F pairs of the single-batch inputs, and the
    normalised spectra of the inputs, the reference and the single-batch update directions."""
    k = samples.shape[0]
    if k < 2 * group or k % 2:
        raise ValueError(f"need an even number of gradient samples ≥ {2 * group}, got {k}")
    samples = samples.double()
    half, ref = samples[: k // 2], samples[k // 2 :].mean(0)
    levels = {
        "1": list(half),
        str(group): [half[i : i + group].mean(0) for i in range(0, k // 2 - group + 1, group)],
        str(k // 2): [half.mean(0)],
    }
    cos = {f: {} for f in FILTERS}
    zero = {}
    single: dict[str, list] = {}
    for level, inputs in levels.items():
        outs = {f: [apply_filter(f, x.float()).double() for x in inputs] for f in FILTERS}
        if level == "1":
            single = outs
        for f in FILTERS:
            cos[f][level] = sum(_cos(o, ref) for o in outs[f]) / len(inputs)
        zero[level] = sum(bool((o == 0).all()) for o in outs["pion"]) / len(inputs)
    pairs = []
    for x in half:
        u, s, vh = torch.linalg.svd(x, full_matrices=False)
        fro = x.norm()
        if fro == 0:
            continue
        signal = torch.einsum("mi,mn,in->i", u, ref, vh)  # u_iᵀ R v_i
        keep = s > 1e-12 * s[0]
        pairs += list(zip((s[keep] / fro).tolist(), (signal[keep] / fro).tolist(), strict=True))
    spectra = {
        "gradient n=1": _mean_lists([normalised_spectrum(x) for x in half]),
        f"gradient n={k // 2}": normalised_spectrum(half.mean(0)),
        "reference": normalised_spectrum(ref),
        **{f: _mean_lists([normalised_spectrum(o) for o in single[f]]) for f in ("adamw", "muon", "pion")},
    }
    return {"cos": cos, "pion_zero": zero, "pairs": pairs, "spectra": spectra}


def region_summary(per_matrix: dict[str, list[dict]]) -> dict:
    """{region: {"matrices", "cos": {filter: {level: mean}}, "pion_zero": {level: mean},
    "share": [[lo, hi, Σ signal / Σ σ, directions]] per σ/‖X‖_F bin, "spectra": {input or filter: [σ_i / ‖M‖_F]}}}."""
    out = {}
    for region, mats in per_matrix.items():
        if not mats:
            continue
        levels = list(mats[0]["cos"]["sgd"])
        cos = {f: {lv: sum(m["cos"][f][lv] for m in mats) / len(mats) for lv in levels} for f in FILTERS}
        zero = {lv: sum(m["pion_zero"][lv] for m in mats) / len(mats) for lv in levels}
        share = []
        pairs = [p for m in mats for p in m["pairs"]]
        for lo, hi in zip(SHARE_BINS[:-1], SHARE_BINS[1:], strict=True):
            inside = [(x, y) for x, y in pairs if lo <= x < hi]
            total = sum(x for x, _ in inside)
            share.append([lo, hi, sum(y for _, y in inside) / total if total > 0 else None, len(inside)])
        spectra = {kind: _mean_lists([m["spectra"][kind] for m in mats]) for kind in mats[0]["spectra"]}
        out[region] = {
            "matrices": len(mats),
            "cos": cos,
            "pion_zero": zero,
            "share": share,
            "spectra": spectra,
        }
    return out


def pion_cutoff() -> float:
    """σ / ‖X‖_F at which Pion's k_p = 0 filter passes half (the doc's vertical line)."""
    return float(filter_cutoff(pion_schedule(0), 0.5))


# ---- the model side: gradients of a sweep checkpoint ----------------------------------------------------------


def checkpoint_gradients(grid_name: str, cell_hash: str, step: int, batches: int, seed: int = 0):
    """{region: [(name, (K, m, n) gradient samples)]} of the cell's checkpoint at `step`, plus its description."""
    from envs.sweep.grid import expand, load_grid
    from envs.sweep.runner import CellRunner
    from vla.cli.train import _policy_parts
    from vla.data import collate_batch
    from vla.train import checkpointing
    from vla.train.hooks import model_regions

    grid = load_grid(grid_name)
    cells = [c for c in expand(grid) if c.hash == cell_hash]
    if not cells:
        raise ValueError(f"no cell {cell_hash!r} in grid {grid_name!r} (pion-sweep {grid_name} dry_run=true)")
    runner = CellRunner(grid)
    ckpt = runner.run_dir(cells[0]) / "checkpoints" / f"step_{step:08d}"
    if not (ckpt / "meta.json").is_file():
        raise FileNotFoundError(
            f"no checkpoint {ckpt}: run `pion-sweep {grid_name} only=[{cell_hash}]` first"
        )
    root, _ = runner.data()
    cfg = runner.train_config(cells[0], data_root=str(root))
    parts = _policy_parts(cfg, dict(cfg["model"]), dict(cfg["data"]))
    model, processor, dataset = parts["model"], parts["processor"], parts["dataset"]
    checkpointing.load_weights(ckpt, model)
    model.train()
    regions = model_regions(model)
    mats = [(n, p) for n, p in model.named_parameters() if p.ndim == 2 and min(p.shape) > 1]
    mats = [(n, p) for n, p in mats if regions.get(id(p)) in REGIONS and "embed" not in n]
    grads = {n: [] for n, _ in mats}
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # the head's train-time input noise uses the global generator
    starts = torch.as_tensor(dataset.valid_starts)
    bs = int(cfg["batch_size"])
    t0 = time.perf_counter()
    for b in range(batches):
        idx = starts[torch.randint(len(starts), (bs,), generator=gen)]
        batch = collate_batch([dataset[int(i)] for i in idx])
        inputs = processor(batch, train=True, generator=gen)
        model.zero_grad(set_to_none=True)
        loss, _ = model.compute_loss(inputs)
        loss.backward()
        for n, p in mats:
            grads[n].append(p.grad.detach().clone())
        eta = (time.perf_counter() - t0) / (b + 1) * (batches - b - 1)
        print(
            f"\r[gradient-noise] batch {b + 1}/{batches}, ETA {eta:.0f}s", end="", file=sys.stderr, flush=True
        )
    print(file=sys.stderr)
    out: dict[str, list] = {r: [] for r in REGIONS}
    for n, p in mats:
        out[regions[id(p)]].append((n, torch.stack(grads[n])))
    desc = {"levels": dict(cells[0].levels), "batch_size": bs, "checkpoint": ckpt.as_posix()}
    return out, desc


def measure(grid_name: str, cell_hash: str, step: int, batches: int = 32) -> dict:
    """The record of one (cell, step): per-region alignment summary, plus what was measured."""
    grads, desc = checkpoint_gradients(grid_name, cell_hash, step, batches)
    per_matrix = {r: [matrix_alignment(g) for _, g in mats] for r, mats in grads.items()}
    return {"grid": grid_name, "hash": cell_hash, "step": step, "batches": batches, **desc,
            "regions": region_summary(per_matrix), "pion_cutoff": pion_cutoff()}  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    """python -m envs.sweep.gradient_noise <grid> <hash> [steps=500,1500] [batches=32] [store=...] [out=...]"""
    from envs.sweep.gradient_noise_report import append_record, write_doc

    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) < 2 or args[0] in ("-h", "--help"):
        print(__doc__)
        raise SystemExit(0 if args and args[0] in ("-h", "--help") else 2)
    grid_name, cell_hash = args[:2]
    opts = {"steps": "500", "batches": "32", "store": "docs/results/gradient_noise.jsonl",
            "out": "docs/gradient_noise.md"}  # fmt: skip
    try:
        for a in args[2:]:
            key, sep, value = a.partition("=")
            if not sep or key not in opts:
                raise ValueError(f"bad argument {a!r}; options are {', '.join(k + '=' for k in opts)}")
            opts[key] = value
        steps = [int(s) for s in opts["steps"].split(",")]
        batches = int(opts["batches"])
        if batches < 8 or batches % 2 or not all(s > 0 for s in steps):
            raise ValueError("batches must be an even number ≥ 8 and steps positive")
        for step in steps:
            t0 = time.perf_counter()
            rec = measure(grid_name, cell_hash, step, batches)
            rec["wall_s"] = round(time.perf_counter() - t0, 1)
            append_record(opts["store"], rec, ["python -m envs.sweep.gradient_noise", *args])
        path = write_doc(opts["store"], opts["out"])
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    print(f"[gradient-noise] wrote {path}")


if __name__ == "__main__":
    main()
