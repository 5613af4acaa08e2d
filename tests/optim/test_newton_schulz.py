"""Newton–Schulz core: scalar maps against the reference table, matrix invariants, edge cases."""

from __future__ import annotations

import importlib
import math

import pytest
import torch

from vla.optim.newton_schulz import (
    PROMOTION,
    SUPPRESSION,
    NSSchedule,
    get_schedule,
    muon_schedule,
    newton_schulz,
    pion_schedule,
    polar_express_schedule,
    register_schedule,
    scalar_filter,
)

NS_MODULE = importlib.import_module(
    "vla.optim.newton_schulz"
)  # the package re-exports a function of that name
SIGMAS = [0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
# Reference §8 table: composed filter F(σ), rounded to 3 decimals there.
TABLE = {
    "muon": [0.699, 0.758, 0.712, 0.747, 1.080, 1.086, 0.765, 0.723, 1.120, 1.119, 0.682, 0.696],
    0: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0.542, 1.000, 1],
    1: [0, 0, 0, 0, 0, 0.0025, 0.591, 0.999, 1, 1, 1, 1],
    2: [0, 0, 0, 0.027, 0.845, 1.000, 1, 1, 1, 1, 1, 1],
    3: [0, 0.001, 0.154, 0.976, 1, 1, 1, 1, 1, 1, 1, 1],
    4: [0.005, 0.358, 0.909, 1, 1, 1, 1, 1, 1, 1, 1, 1],
    5: [0.229, 0.852, 0.996, 1, 1, 1, 1, 1, 1, 1, 1, 1],
}
HALF_POWER_CUTOFF = [0.798, 0.492, 0.263, 0.131, 0.060, 0.023]


def _schedule(key) -> NSSchedule:
    return muon_schedule() if key == "muon" else pion_schedule(key)


@pytest.mark.parametrize("key", list(TABLE))
def test_composed_filter_matches_reference_table(key):
    got = scalar_filter(torch.tensor(SIGMAS), _schedule(key))
    torch.testing.assert_close(got, torch.tensor(TABLE[key], dtype=torch.float64), atol=6e-4, rtol=0)


def test_single_step_maps():
    promotion, suppression = NSSchedule("p", (PROMOTION,)), NSSchedule("s", (SUPPRESSION,))
    assert float(scalar_filter(0.5, promotion)) == pytest.approx(0.79297, abs=1e-5)
    # The reference prints 0.36510; the exact value of 1.875·0.2 − 1.25·0.2³ + 0.375·0.2⁵ is 0.36512.
    assert float(scalar_filter(0.2, promotion)) == pytest.approx(0.36512, abs=1e-9)
    assert float(scalar_filter(0.5, suppression)) == pytest.approx(0.265625, abs=1e-12)
    unstable = math.sqrt(2 / 3)  # f_s's interior fixed point
    assert float(scalar_filter(unstable, suppression)) == pytest.approx(unstable, abs=1e-12)
    for sched in (promotion, suppression):
        assert float(scalar_filter(1.0, sched)) == pytest.approx(1.0, abs=1e-12)
    assert float(scalar_filter(1.0, NSSchedule("q", (muon_schedule().steps[0],)))) == pytest.approx(
        0.701, abs=1e-9
    )


@pytest.mark.parametrize("k_p", range(6))
def test_half_power_cutoff(k_p):
    sched, lo, hi = pion_schedule(k_p), 1e-6, 1.0
    for _ in range(60):  # F is increasing on [0, 1] for every Pion schedule
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if float(scalar_filter(mid, sched)) < 0.5 else (lo, mid)
    assert lo == pytest.approx(HALF_POWER_CUTOFF[k_p], abs=1.5e-3)


def _with_spectrum(sigma: torch.Tensor, rows: int, cols: int, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    u = torch.linalg.qr(torch.randn(rows, len(sigma), generator=gen, dtype=torch.float64)).Q
    v = torch.linalg.qr(torch.randn(cols, len(sigma), generator=gen, dtype=torch.float64)).Q
    return u, v, u @ torch.diag(sigma) @ v.T


# Spectra kept away from each filter's steep transition, where bf16 rounding is amplified.
SPECTRA = {
    "muon": [0.9, 0.3, 0.25, 0.12, 0.05],
    0: [0.95, 0.2, 0.15, 0.1, 0.05],
    1: [0.8, 0.4, 0.3, 0.2, 0.1],
    2: [0.75, 0.45, 0.35, 0.15, 0.05],
    3: [0.7, 0.5, 0.3, 0.3, 0.02],
    5: [0.6, 0.5, 0.45, 0.3, 0.1],
}


@pytest.mark.parametrize("key", list(SPECTRA))
@pytest.mark.parametrize("shape", [(48, 96), (96, 48)])
def test_svd_equivariance(key, shape):
    """HP-NS(UΣVᵀ) = U·F(Σ)·Vᵀ, with Σ taken after Frobenius normalisation."""
    sigma = torch.tensor(SPECTRA[key], dtype=torch.float64)
    sigma = sigma / sigma.norm()
    u, v, m = _with_spectrum(sigma, *shape)
    expected = u @ torch.diag(scalar_filter(sigma, _schedule(key))) @ v.T
    exact = newton_schulz(m.float(), _schedule(key), compute_dtype=torch.float32).double()
    assert torch.linalg.matrix_norm(exact - expected, ord=2) < 1e-4
    if key != "muon":  # Muon's oscillating quintic amplifies bf16 rounding far past this; see the band test
        bf16 = newton_schulz(m.float(), _schedule(key)).double()
        assert torch.linalg.matrix_norm(bf16 - expected, ord=2) < 0.03


def test_scale_invariance():
    m = torch.randn(64, 160, generator=torch.Generator().manual_seed(1))
    base = newton_schulz(m, pion_schedule(3)).float()
    for c in (1e-3, 1e3):
        assert (newton_schulz(c * m, pion_schedule(3)).float() - base).abs().max() < 0.02


def test_transpose_is_exact():
    m = torch.randn(40, 100, generator=torch.Generator().manual_seed(2))
    for sched in (muon_schedule(), pion_schedule(2)):
        torch.testing.assert_close(newton_schulz(m.T, sched), newton_schulz(m, sched).T, atol=0, rtol=0)


@pytest.mark.parametrize("scale", [0.0, 1e-30])
def test_zero_or_tiny_gradient_gives_zero_update(scale):
    g = torch.ones(32, 64) * scale
    for sched in (muon_schedule(), pion_schedule(0), polar_express_schedule()):
        out = newton_schulz(g, sched)
        assert torch.isfinite(out).all()
        assert out.abs().max() < 1e-20


def test_batched_equals_loop():
    batch = torch.randn(5, 24, 56, generator=torch.Generator().manual_seed(3))
    for sched in (muon_schedule(), pion_schedule(4)):
        looped = torch.stack([newton_schulz(x, sched, compute_dtype=torch.float32) for x in batch])
        batched = newton_schulz(batch, sched, compute_dtype=torch.float32)
        torch.testing.assert_close(batched, looped, atol=1e-5, rtol=0)
    four_d = batch.reshape(5, 1, 24, 56)
    torch.testing.assert_close(
        newton_schulz(four_d, pion_schedule(4)).reshape(5, 24, 56),
        newton_schulz(batch, pion_schedule(4)),
        atol=0,
        rtol=0,
    )


def test_bf16_agrees_with_fp32():
    m = torch.randn(128, 256, generator=torch.Generator().manual_seed(4))
    for sched in (muon_schedule(), pion_schedule(4)):
        ref = newton_schulz(m, sched, compute_dtype=torch.float32)
        assert (newton_schulz(m, sched) - ref).abs().max() < 0.03
    assert newton_schulz(m.double(), muon_schedule()).dtype == torch.float64  # cast back to input dtype


def test_kp0_output_has_at_most_one_large_singular_value():
    gen = torch.Generator().manual_seed(5)
    spiky = torch.randn(96, 1, generator=gen) @ torch.randn(1, 200, generator=gen) * 30 + torch.randn(
        96, 200, generator=gen
    )
    for m in (torch.randn(96, 200, generator=gen), spiky, spiky.T):
        sv = torch.linalg.svdvals(newton_schulz(m, pion_schedule(0)).float())
        assert int((sv > 0.5).sum()) <= 1
    assert (
        torch.linalg.svdvals(newton_schulz(spiky, pion_schedule(0)).float())[0] > 0.9
    )  # dominant one survives


def test_gaussian_update_rms_matches_reference():
    m = torch.randn(256, 512, generator=torch.Generator().manual_seed(6))
    rms = {
        k: newton_schulz(m, _schedule(k)).float().pow(2).mean().sqrt().item()
        for k in ("muon", 0, 1, 2, 3, 4, 5)
    }
    assert rms["muon"] == pytest.approx(0.0416, rel=0.05)
    for k in (0, 1, 2):
        assert rms[k] < 1e-4
    assert rms[3] == pytest.approx(0.0022, rel=0.35)
    assert rms[4] == pytest.approx(0.024, rel=0.1)
    assert rms[5] == pytest.approx(0.038, rel=0.1)


@pytest.mark.parametrize("shape", [(512, 2048), (2048, 512)])
def test_muon_singular_value_band(shape):
    """Keller's quintic on a Gaussian 512×2048: σ(out) min/median/max ≈ 0.748 / 0.949 / 1.137."""
    sv = torch.linalg.svdvals(
        newton_schulz(torch.randn(*shape, generator=torch.Generator().manual_seed(7))).float()
    )
    assert sv.min().item() == pytest.approx(0.748, abs=0.04)
    assert sv.median().item() == pytest.approx(0.949, abs=0.03)
    assert sv.max().item() == pytest.approx(1.137, abs=0.04)


def test_schedule_registry(monkeypatch):
    monkeypatch.setattr(
        NS_MODULE, "SCHEDULES", dict(NS_MODULE.SCHEDULES)
    )  # registrations vanish after the test
    assert len(get_schedule("pion", promotion_steps=2)) == 5
    assert get_schedule("pion", promotion_steps=2).steps[:2] == (PROMOTION, PROMOTION)
    assert get_schedule("polar_express").norm_margin == 1.02
    custom = get_schedule([(1.5, -0.5, 0.0)] * 3)
    assert float(scalar_filter(1.0, custom)) == pytest.approx(1.0)
    register_schedule("cubic_test", lambda steps=3: NSSchedule("cubic", ((1.5, -0.5, 0.0),) * steps))
    assert len(get_schedule("cubic_test", steps=4)) == 4
    with pytest.raises(ValueError):
        register_schedule("cubic_test", lambda: None)
    for bad in (
        lambda: get_schedule("nope"),
        lambda: get_schedule([]),
        lambda: pion_schedule(6, 5),
        lambda: muon_schedule(0),
        lambda: NSSchedule("x", ((1.0, 2.0),)),
        lambda: newton_schulz(torch.ones(3)),
    ):
        with pytest.raises(ValueError):
            bad()


def test_polar_express_whitens():
    sv = torch.linalg.svdvals(
        newton_schulz(
            torch.randn(128, 512, generator=torch.Generator().manual_seed(8)), "polar_express"
        ).float()
    )
    assert sv.min() > 0.6 and sv.max() < 1.25
