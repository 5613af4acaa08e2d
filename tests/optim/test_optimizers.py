"""Muon / Pion / LowRankMuon: the step against hand-written references, arguments, checkpoints."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from vla.optim import LowRankMuon, Muon, Pion, lr_scale_factor


def _params(*shapes, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [torch.nn.Parameter(torch.randn(*s, generator=gen)) for s in shapes]


def _set_grads(params, seed):
    gen = torch.Generator().manual_seed(seed)
    for p in params:
        p.grad = torch.randn(p.shape, generator=gen)


@pytest.mark.parametrize("nesterov", [True, False])
@pytest.mark.parametrize("adjust", ["original", "match_rms_adamw"])
def test_muon_matches_torch_muon(nesterov, adjust):
    ours = _params((32, 80), (96, 48))
    initial = [p.detach().clone() for p in ours]
    theirs = [torch.nn.Parameter(p.detach().clone()) for p in ours]
    kw = dict(lr=0.02, weight_decay=0.1, momentum=0.95, nesterov=nesterov)
    opt_ours = Muon(ours, lr_scale=adjust, **kw)
    opt_theirs = torch.optim.Muon(theirs, adjust_lr_fn=adjust, **kw)
    for step in range(4):
        _set_grads(ours, step)
        _set_grads(theirs, step)
        opt_ours.step()
        opt_theirs.step()
    for a, b, a0 in zip(ours, theirs, initial):
        torch.testing.assert_close(a, b, atol=2e-4, rtol=0)
        assert (a.detach() - a0).abs().max() > 1e-2  # the comparison is not vacuous


def _svd_pion_filter(u: torch.Tensor, k_p: int, ns_steps: int = 5) -> torch.Tensor:
    """Pion's filter computed independently of `newton_schulz`: a float64 SVD of the Frobenius-normalised
    matrix, each singular value mapped through k_p Promotion quintics then the Suppression quintics."""
    x = u.double() / u.double().norm()
    U, sigma, Vh = torch.linalg.svd(x, full_matrices=False)
    promotion, suppression = (1.875, -1.25, 0.375), (0.0, 2.5, -1.5)  # reference §2.7
    for a, b, c in [promotion] * k_p + [suppression] * (ns_steps - k_p):
        sigma = a * sigma + b * sigma**3 + c * sigma**5
    return (U * sigma) @ Vh


def _reference_pion_step(w, buf, g, lr, wd, mu, nesterov, k_p, s):
    """The official algorithm (reference §2) written out for one matrix, in float64."""
    buf = buf.lerp(g.double(), 1 - mu)
    u = g.double().lerp(buf, mu) if nesterov else buf
    o = _svd_pion_filter(u, k_p)
    w = w * (1 - lr * wd) - lr * s * math.sqrt(max(w.shape)) * o
    return w, buf


@pytest.mark.parametrize("k_p", [0, 3])
@pytest.mark.parametrize("nesterov", [True, False])
def test_pion_step_matches_reference_algorithm(k_p, nesterov):
    (p,) = _params((40, 72))
    w, buf = p.detach().double().clone(), torch.zeros_like(p, dtype=torch.float64)
    opt = Pion(
        [p],
        lr=0.05,
        weight_decay=0.1,
        promotion_steps=k_p,
        nesterov=nesterov,
        scale_factor=2.0,
        low_rank=False,
        ns_dtype="float32",  # the reference is exact (float64 SVD); bf16 rounding would dominate the comparison
    )
    for step in range(3):
        _set_grads([p], step)
        # a dominant direction so that k_p = 0 has something to pass
        p.grad += 5 * torch.outer(torch.linspace(-1, 1, 40), torch.linspace(1, 2, 72))
        opt.step()
        w, buf = _reference_pion_step(w, buf, p.grad, 0.05, 0.1, 0.95, nesterov, k_p, 2.0)
    assert (w - p.detach().double()).abs().max() < 1e-4
    torch.testing.assert_close(opt.state[p]["momentum_buffer"].double(), buf, atol=1e-6, rtol=0)
    assert (p.detach() - _params((40, 72))[0].detach()).abs().max() > 0.1  # the comparison is not vacuous


def test_conv_weight_is_flattened_to_out_by_rest():
    conv, flat = _params((8, 3, 3, 3), seed=1)[0], None
    flat = torch.nn.Parameter(conv.detach().reshape(8, -1).clone())
    conv.grad = torch.randn(8, 3, 3, 3)
    flat.grad = conv.grad.reshape(8, -1).clone()
    for cls in (Muon, Pion):
        a, b = copy.deepcopy(conv), copy.deepcopy(flat)
        a.grad, b.grad = conv.grad, flat.grad
        cls([a], lr=0.1, promotion_steps=4).step() if cls is Pion else cls([a], lr=0.1).step()
        cls([b], lr=0.1, promotion_steps=4).step() if cls is Pion else cls([b], lr=0.1).step()
        torch.testing.assert_close(a.detach().reshape(8, -1), b.detach(), atol=0, rtol=0)


def test_zero_gradient_gives_zero_update():
    for cls in (Muon, Pion, LowRankMuon):
        (p,) = _params((16, 24))
        before = p.detach().clone()
        p.grad = torch.zeros_like(p)
        cls([p], weight_decay=0.0).step()
        assert torch.isfinite(p).all()
        torch.testing.assert_close(p.detach(), before, atol=0, rtol=0)


def test_parameters_without_grad_are_untouched():
    a, b = _params((16, 24), (16, 24))
    before = b.detach().clone()
    a.grad = torch.randn(16, 24)
    opt = Muon([a, b])
    opt.step()
    assert torch.equal(b.detach(), before)
    assert opt.step_stats["matrices"] == 1  # the spectral map really ran, once


@pytest.mark.parametrize(
    "cls,kwargs",
    [
        (Muon, {"lr": -1.0}),
        (Muon, {"momentum": 1.0}),
        (Muon, {"weight_decay": -0.1}),
        (Muon, {"lr_scale": "nope"}),
        (Muon, {"ns_coefficients": (1.0, 2.0)}),
        (Muon, {"ns_steps": 0}),
        (Muon, {"ns_schedule": "nope"}),
        (Muon, {"scale_factor": 0.0}),
        (Pion, {"promotion_steps": 6}),
        (Pion, {"promotion_steps": -1}),
        (Pion, {"low_rank": "yes"}),
        (Pion, {"low_rank_tol": 0.0}),
        (Pion, {"num_heads": 5}),
        (Pion, {"num_heads": 4, "head_split_dim": 2}),
        (LowRankMuon, {"rank": 0}),
    ],
)
def test_bad_arguments_raise_value_error(cls, kwargs):
    with pytest.raises(ValueError):
        cls(_params((16, 24)), **kwargs)


def test_vectors_are_rejected():
    with pytest.raises(ValueError, match="ndim >= 2"):
        Pion(_params((16,)))


def test_lr_scale_conventions():
    assert lr_scale_factor("pion", 128, 2048, 5.0) == pytest.approx(5 * math.sqrt(2048))
    assert lr_scale_factor("original", 2048, 512) == pytest.approx(2.0)
    assert lr_scale_factor("original", 512, 2048) == pytest.approx(1.0)
    assert lr_scale_factor("match_rms_adamw", 896, 4864) == pytest.approx(0.2 * math.sqrt(4864))
    assert lr_scale_factor("spectral_norm", 128, 2048) == pytest.approx(0.25)
    assert lr_scale_factor("spectral", 128, 2048) == pytest.approx(math.sqrt(2048))


def _train(opt_factory, steps, params):
    opt = opt_factory(params)
    for step in range(steps):
        _set_grads(params, 100 + step)
        opt.step()
    return opt


@pytest.mark.parametrize(
    "factory",
    [
        lambda ps: Muon(ps, lr=0.02),
        lambda ps: Pion(ps, lr=0.02, promotion_steps=1, num_heads=4),
        lambda ps: LowRankMuon(ps, lr=0.02, rank=4),
    ],
)
def test_state_dict_round_trip_and_identical_resume(factory, tmp_path):
    params = _params((32, 48), (64, 32))
    opt = _train(factory, 3, params)
    torch.save(opt.state_dict(), tmp_path / "opt.pt")

    resumed_params = [torch.nn.Parameter(p.detach().clone()) for p in params]
    resumed = factory(resumed_params)
    resumed.load_state_dict(torch.load(tmp_path / "opt.pt", weights_only=True))
    for a, b in zip(params, resumed_params):
        torch.testing.assert_close(
            opt.state[a]["momentum_buffer"], resumed.state[b]["momentum_buffer"], atol=0, rtol=0
        )

    for ps, o in ((params, opt), (resumed_params, resumed)):
        _set_grads(ps, 999)
        o.step()
    for a, b in zip(params, resumed_params):
        assert torch.equal(a.detach(), b.detach())


def test_state_is_populated_before_the_first_step():
    params = _params((8, 8), (8, 16))
    sd = Pion(params).state_dict()
    assert set(sd["state"]) == {0, 1}
    assert sd["param_groups"][0]["momentum_convention"] == "ema"


def test_foreign_momentum_convention_is_refused():
    opt = Muon(_params((8, 8)))
    sd = opt.state_dict()
    sd["param_groups"][0]["momentum_convention"] = "sgd"
    with pytest.raises(ValueError, match="momentum_convention"):
        opt.load_state_dict(sd)


def test_nesterov_changes_the_update():
    outs = []
    for nesterov in (True, False):
        params = _params((24, 40))
        _train(lambda ps, n=nesterov: Muon(ps, lr=0.02, nesterov=n), 3, params)
        outs.append(params[0].detach())
    assert (outs[0] - outs[1]).abs().max() > 1e-4


def test_low_rank_muon_update_is_top_k_polar():
    (p,) = _params((32, 48))
    w0 = p.detach().clone()
    g = torch.randn(32, 48)
    p.grad = g
    LowRankMuon([p], lr=1.0, rank=3, weight_decay=0.0, nesterov=False, lr_scale="spectral").step()
    update = (w0 - p.detach()) / math.sqrt(48)
    u, _, vh = torch.linalg.svd(g)
    torch.testing.assert_close(update, u[:, :3] @ vh[:3], atol=1e-2, rtol=0)
    assert int((torch.linalg.svdvals(update) > 0.5).sum()) == 3


def test_same_shape_stacking_gives_the_same_update():
    results = []
    for stack in (False, True):
        params = _params((24, 40), (24, 40), (40, 24), (8, 16))
        _train(lambda ps, s=stack: Pion(ps, promotion_steps=4, stack_same_shape=s), 2, params)
        results.append([p.detach() for p in params])
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0)


def test_rejected_param_group_leaves_the_optimizer_unchanged():
    opt = Pion(_params((16, 24)))
    with pytest.raises(ValueError):
        opt.add_param_group({"params": _params((30, 16)), "num_heads": 4})
    assert len(opt.param_groups) == 1 and len(opt.state) == 1
