"""The gradient-noise diagnosis: what each optimizer's filter makes of noisy low-rank gradients, and its doc."""

from __future__ import annotations

import json

import pytest
import torch

from envs.sweep.gradient_noise import (
    SPECTRUM_LEN,
    apply_filter,
    matrix_alignment,
    pion_cutoff,
    region_summary,
)
from envs.sweep.gradient_noise_report import append_record, load_records, write_doc


def _low_rank_samples(noise: float, k: int = 16, m: int = 24, n: int = 48, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    u = torch.linalg.qr(torch.randn(m, 2, generator=g))[0]
    v = torch.linalg.qr(torch.randn(n, 2, generator=g))[0]
    signal = u @ torch.diag(torch.tensor([3.0, 2.0])) @ v.T
    return signal + noise * torch.randn(k, m, n, generator=g)


def test_filters_are_the_optimizers_update_directions():
    x = torch.randn(8, 16, generator=torch.Generator().manual_seed(1))
    assert torch.equal(apply_filter("sgd", x), x) and torch.equal(apply_filter("adamw", x), torch.sign(x))
    s = torch.linalg.svdvals(apply_filter("muon", x))
    assert s.min() > 0.6 and s.max() < 1.25  # Muon whitens: every direction near 1
    rank_one = torch.ones(8, 16) / 1e3
    assert (
        torch.linalg.svdvals(apply_filter("pion", rank_one))[0] > 0.9
    )  # one direction at σ/‖X‖_F = 1 passes
    flat = torch.linalg.qr(torch.randn(16, 8, generator=torch.Generator().manual_seed(2)))[0].T  # σ all equal
    assert apply_filter("pion", flat).abs().max() < 1e-3  # nothing above the cut-off: a (near) zero update
    assert abs(pion_cutoff() - 0.80) < 0.01
    with pytest.raises(ValueError, match="unknown filter"):
        apply_filter("sgdm", x)


def test_pion_follows_a_low_rank_signal_better_than_muon_and_the_tail_is_noise():
    r = matrix_alignment(_low_rank_samples(noise=0.02))
    cos = r["cos"]
    assert list(cos["sgd"]) == ["1", "4", "8"]
    assert cos["pion"]["1"] > cos["muon"]["1"] + 0.3  # Muon lifts the noisy tail to 1, Pion drops it
    assert cos["sgd"]["8"] > cos["sgd"]["1"]  # averaging inputs removes noise
    assert r["pion_zero"] == {"1": 0.0, "4": 0.0, "8": 0.0}
    share = region_summary({"action_head": [r]})["action_head"]["share"]
    top = [y for lo, _, y, _ in share if lo >= 0.4 and y is not None]
    tail = [y for lo, hi, y, _ in share if hi <= 0.05 and y is not None]
    assert top and min(top) > 0.9 and tail and max(abs(y) for y in tail) < 0.1
    # pure noise: nothing is aligned, and Pion passes nothing
    noise = matrix_alignment(torch.randn(16, 24, 48, generator=torch.Generator().manual_seed(3)))
    assert (
        abs(noise["cos"]["muon"]["1"]) < 0.1
        and noise["pion_zero"]["1"] == 1.0
        and noise["cos"]["pion"]["1"] == 0
    )
    with pytest.raises(ValueError, match="even number"):
        matrix_alignment(torch.randn(7, 4, 4))


def test_spectra_show_muon_whitening_and_pion_dropping_the_tail():
    r = matrix_alignment(_low_rank_samples(noise=0.05))
    sp = r["spectra"]
    assert set(sp) == {"gradient n=1", "gradient n=8", "reference", "adamw", "muon", "pion"}
    assert all(len(v) == min(SPECTRUM_LEN, 24) for v in sp.values())  # min(m, n) = 24 singular values
    # the signal has rank 2: the reference's energy sits in its two leading directions
    assert sum(v * v for v in sp["reference"][:2]) > 0.95
    # the single-batch gradient has a noise tail that averaging 8 batches shrinks
    assert sp["gradient n=1"][5] > 1.5 * sp["gradient n=8"][5] > 0
    muon, pion = sp["muon"], sp["pion"]
    assert max(muon) / min(muon) < 2.5  # Muon: every direction near the same value, the tail lifted
    assert pion[0] > 0.5 and max(pion[4:]) < 0.05 * pion[0]  # Pion: the head kept, the tail dropped
    assert abs(sum(v * v for v in muon) - 1) < 0.01  # σ / ‖M‖_F: squares sum to ≈ 1 (a mean over inputs)
    noise = matrix_alignment(torch.randn(16, 24, 48, generator=torch.Generator().manual_seed(3)))
    assert noise["spectra"]["pion"] == [0.0] * 24  # an all-zero Pion update is a zero spectrum
    summary = region_summary({"action_head": [r, noise]})["action_head"]["spectra"]
    assert summary["pion"][0] == pytest.approx((pion[0] + 0.0) / 2)  # mean over the region's matrices


def test_records_append_and_render_a_byte_stable_doc(tmp_path):
    summary = region_summary({"action_head": [matrix_alignment(_low_rank_samples(0.02))],
                              "vision": [matrix_alignment(_low_rank_samples(0.5, seed=4))]})  # fmt: skip
    rec = {"grid": "g", "hash": "abc", "step": 500, "batches": 16, "levels": {"optimizer": "pion"},
           "batch_size": 32, "checkpoint": "outputs/x", "regions": summary, "pion_cutoff": pion_cutoff(), "wall_s": 1.0}  # fmt: skip
    store = tmp_path / "results" / "gn.jsonl"
    append_record(store, rec, ["python -m envs.sweep.gradient_noise", "g", "abc"])
    with open(store, "a") as f:
        f.write('{"cut short')  # a killed write
    append_record(store, {**rec, "wall_s": 2.0}, ["again"])  # the same (cell, step): the latest wins
    recs = load_records(store)
    assert len(recs) == 1 and recs[0]["wall_s"] == 2.0 and recs[0]["commit"] and recs[0]["machine"]
    assert all(json.loads(line) for line in store.read_text().splitlines())
    out = tmp_path / "gn.md"
    text = write_doc(store, out).read_text()
    assert "| region (matrices) | update direction | n = 1 | n = 4 | n = 8 |" in text
    pion = next(line for line in text.splitlines() if line.startswith("| action_head (1) | Pion (k_p 0)"))
    muon = next(line for line in text.splitlines() if line.startswith("| action_head (1) | Muon (NS5)"))
    assert float(pion.split("|")[3]) > float(muon.split("|")[3])
    assert (
        "## Summary: action head, single minibatch (n = 1)" in text
        and "| g `abc` (optimizer=pion), update 500 |" in text
    )
    assert text.index("| vision") < text.index("| action_head")  # regions in model order (vision, ..., head)
    assert (tmp_path / "img" / "gradient_noise" / "g_abc_500.png").stat().st_size > 5000
    assert "Spectra panels: the leading singular values" in text
    old = {**rec, "regions": {k: {f: v for f, v in r.items() if f != "spectra"} for k, r in summary.items()}}
    append_record(
        store, {**old, "hash": "old"}, ["before spectra"]
    )  # records from before the spectra still render
    text = write_doc(store, out).read_text()
    assert (
        text.count("Spectra panels") == 1
        and (tmp_path / "img" / "gradient_noise" / "g_old_500.png").is_file()
    )
    assert write_doc(store, out).read_text() == text


def test_cli_errors_are_one_line(capsys):
    from envs.sweep.gradient_noise import main

    with pytest.raises(SystemExit) as e:
        main(["smoke", "nothash", "steps=60", "batches=8"])
    assert e.value.code == 2 and "no cell 'nothash'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["smoke", "x", "bogus=1"])
    assert e.value.code == 2 and "bad argument" in capsys.readouterr().err
