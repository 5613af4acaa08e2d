"""Spectral diagnostics: metric values on known spectra, SNR, per-module summary, the plot command."""

from __future__ import annotations

import math

import pytest
import torch

from vla.optim import Pion
from vla.optim.heads import HeadSplit
from vla.optim.spectral import (
    effective_rank,
    gradient_snr,
    pion_pass_count,
    singular_values,
    spectral_summary,
    stable_rank,
    top_energy,
)


def test_rank_metrics_on_known_spectra():
    assert float(effective_rank(torch.tensor([2.0, 0.0, 0.0]))) == pytest.approx(1.0)
    assert float(effective_rank(torch.ones(10))) == pytest.approx(10.0)
    assert float(effective_rank(torch.zeros(4))) == 0.0
    p = torch.tensor([3.0, 1.0]) / 4
    assert float(effective_rank(torch.tensor([3.0, 1.0]))) == pytest.approx(
        math.exp(-(p * p.log()).sum().item())
    )
    assert float(stable_rank(torch.tensor([2.0, 1.0, 1.0]))) == pytest.approx(1.5)
    assert float(top_energy(torch.tensor([3.0, 4.0]))) == pytest.approx(16 / 25)  # the largest, sorted or not
    assert float(top_energy(torch.tensor([4.0, 3.0]))) == pytest.approx(16 / 25)
    assert top_energy(torch.tensor([[1.0, 0.0], [1.0, 1.0]])).tolist() == pytest.approx([1.0, 0.5])


def test_pion_pass_count_uses_the_filter_cutoffs():
    sigma = torch.tensor([0.9, 0.3, 0.2, 0.1, 0.05, 0.05])
    sigma = sigma / sigma.norm()  # ≈ 0.92, 0.31, 0.21, 0.10, ...
    assert [int(pion_pass_count(sigma, k)) for k in range(3)] == [1, 1, 2]  # cut-offs 0.80, 0.49, 0.26
    assert int(pion_pass_count(torch.ones(16), 0)) == 0  # flat: nothing reaches 0.8


def test_per_head_singular_values():
    w = torch.randn(8, 6)
    per_head = singular_values(w, HeadSplit(2, 0))
    assert per_head.shape == (2, 4)
    torch.testing.assert_close(per_head[1], torch.linalg.svdvals(w[4:]))


def test_gradient_snr():
    gen = torch.Generator().manual_seed(0)
    noise = torch.randn(8, 4096, generator=gen)
    assert gradient_snr(noise) == pytest.approx(1 / 7, rel=0.1)  # pure noise: 1/(n − 1)
    signal = torch.randn(4096, generator=gen)
    assert gradient_snr(signal + 0.1 * noise) == pytest.approx(100 * 7 / 8 * 8 / 7, rel=0.15)
    with pytest.raises(ValueError):
        gradient_snr(noise[:1])


def test_summary_predicts_which_matrices_pion_freezes():
    gen = torch.Generator().manual_seed(1)
    spiky = torch.outer(torch.randn(32, generator=gen), torch.randn(48, generator=gen)) * 5
    grads = {
        "flat": torch.randn(32, 48, generator=gen),
        "spiky": spiky + 0.1 * torch.randn(32, 48, generator=gen),
    }
    params = {n: torch.nn.Parameter(torch.zeros(32, 48)) for n in grads}
    for n, p in params.items():
        p.grad = grads[n]
    summary = spectral_summary(params.items(), source="grad", promotion_steps=0)
    assert summary["spectral/flat/pion_pass_kp0"] == 0 and summary["spectral/spiky/pion_pass_kp0"] == 1
    assert summary["spectral/all/pion_zero_update_fraction"] == 0.5
    assert summary["spectral/spiky/effective_rank"] < summary["spectral/flat/effective_rank"]

    opt = Pion(list(params.values()), lr=1.0, weight_decay=0.0, nesterov=False)
    opt.step()
    assert params["flat"].abs().max() < 1e-3 and params["spiky"].abs().max() > 0.1  # as predicted
    momentum = spectral_summary(params.items(), source="momentum", optimizer=opt)
    assert momentum["spectral/spiky/pion_pass_kp0"] == 1
    with pytest.raises(ValueError):
        spectral_summary(params.items(), source="momentum")


def test_plot_command_writes_png(tmp_path):
    pytest.importorskip("matplotlib")
    pytest.importorskip("transformers")
    from vla.optim.plot_filters import main

    out = tmp_path / "filters.png"
    main(["--out", str(out)])
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 20_000
