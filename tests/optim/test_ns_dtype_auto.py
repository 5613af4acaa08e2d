"""ns_dtype="auto": measured once per process on CPU, bf16 on CUDA; the update equals the resolved dtype's."""

import pytest
import torch

from vla.optim import Muon, Pion
from vla.optim.orthogonalized import _fastest_ns_dtype, ns_compute_dtype


def test_auto_resolves_to_a_measured_dtype_and_is_cached():
    dtype = ns_compute_dtype("auto", torch.device("cpu"))
    assert dtype in (torch.float32, torch.bfloat16)
    assert ns_compute_dtype("auto", torch.device("cpu")) is dtype
    assert _fastest_ns_dtype.cache_info().misses == 1
    assert ns_compute_dtype("float32", torch.device("cpu")) is torch.float32
    assert ns_compute_dtype("auto", torch.device("cuda")) is torch.bfloat16  # no device needed to decide


@pytest.mark.parametrize("cls", [Muon, Pion])
def test_auto_update_equals_the_resolved_dtype(cls):
    resolved = {torch.float32: "float32", torch.bfloat16: "bfloat16"}[
        ns_compute_dtype("auto", torch.device("cpu"))
    ]
    g = torch.randn(16, 24, generator=torch.Generator().manual_seed(0))
    out = {}
    for name in ("auto", resolved):
        w = torch.nn.Parameter(torch.zeros(16, 24))
        kw = {"promotion_steps": 3} if cls is Pion else {}  # k_p 0 zeroes a random (flat) gradient
        opt = cls([w], lr=0.1, ns_dtype=name, **kw)
        w.grad = g.clone()
        opt.step()
        out[name] = w.detach().clone()
    assert torch.equal(out["auto"], out[resolved]) and out["auto"].abs().sum() > 0


def test_unknown_ns_dtype_is_refused():
    with pytest.raises(ValueError, match="ns_dtype must be one of"):
        Muon([torch.nn.Parameter(torch.zeros(4, 4))], ns_dtype="float16")
