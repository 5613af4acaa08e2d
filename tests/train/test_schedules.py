"""Schedule shapes with numbers: warmup + cosine, the reference's MultiStepLR, constant; applied per group."""

from __future__ import annotations

import math

import pytest
import torch

from vla.train.config import ScheduleConfig
from vla.train.schedules import build_scheduler, lr_factor


def _lrs(cfg: ScheduleConfig, steps: int, base: float = 1.0) -> list[float]:
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=base)
    sched = build_scheduler(opt, cfg, steps)
    out = []
    for _ in range(steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_warmup_cosine_numbers():
    lrs = _lrs(ScheduleConfig(name="cosine", warmup_steps=4, min_lr_ratio=0.1), steps=14, base=2.0)
    assert lrs[:4] == pytest.approx([0.5, 1.0, 1.5, 2.0])  # (k+1)/W, never a zero-lr update
    assert lrs[4] == pytest.approx(2.0)  # cosine starts at the peak
    # halfway through the 10 cosine updates: floor + (1 - floor)/2 of the peak
    assert lrs[9] == pytest.approx(2.0 * (0.1 + 0.9 * 0.5))
    assert lrs[13] == pytest.approx(2.0 * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 9 / 10))))
    assert all(a >= b for a, b in zip(lrs[4:], lrs[5:]))  # monotone after warmup
    f = lr_factor(ScheduleConfig(name="cosine", warmup_steps=4, min_lr_ratio=0.1), 14)
    assert f(14) == pytest.approx(0.1) and f(1000) == pytest.approx(0.1)  # stays at the floor


def test_cosine_decay_steps_beyond_run():
    f = lr_factor(ScheduleConfig(name="cosine", warmup_steps=0, decay_steps=30), steps=10)
    assert f(0) == 1.0 and f(15) == pytest.approx(0.5) and f(30) == pytest.approx(0.0)


def test_multistep_matches_torch_multisteplr():
    ours = _lrs(ScheduleConfig(name="multistep", milestones=[3, 6], gamma=0.1), steps=8, base=1e-4)
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1e-4)
    ref_sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[3, 6], gamma=0.1)
    ref = []
    for _ in range(8):
        ref.append(opt.param_groups[0]["lr"])
        opt.step()
        ref_sched.step()
    assert ours == pytest.approx(ref)
    assert ours == pytest.approx([1e-4] * 3 + [1e-5] * 3 + [1e-6] * 2)


def test_constant_with_warmup_and_group_ratios():
    opt = torch.optim.SGD(
        [{"params": [torch.nn.Parameter(torch.zeros(1))], "lr": 1.0},
         {"params": [torch.nn.Parameter(torch.zeros(1))], "lr": 0.1}],  # an aux group at 0.1·lr
        lr=1.0,
    )  # fmt: skip
    sched = build_scheduler(opt, ScheduleConfig(name="constant", warmup_steps=2), 5)
    seen = []
    for _ in range(4):
        seen.append([g["lr"] for g in opt.param_groups])
        opt.step()
        sched.step()
    flat = [lr for pair in seen for lr in pair]
    assert flat == pytest.approx([0.5, 0.05, 1.0, 0.1, 1.0, 0.1, 1.0, 0.1])


def test_schedule_state_roundtrip():
    cfg = ScheduleConfig(name="cosine", warmup_steps=2)
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=1.0)
    sched = build_scheduler(opt, cfg, 10)
    for _ in range(5):
        opt.step()
        sched.step()
    opt2 = torch.optim.SGD([p], lr=1.0)
    sched2 = build_scheduler(opt2, cfg, 10)
    opt2.load_state_dict(opt.state_dict())
    sched2.load_state_dict(sched.state_dict())
    for _ in range(3):
        opt.step(), sched.step(), opt2.step(), sched2.step()
        assert opt.param_groups[0]["lr"] == opt2.param_groups[0]["lr"]


@pytest.mark.parametrize(
    "kwargs, match",
    [({"name": "linear"}, "schedule.name"), ({"warmup_steps": -1}, "warmup_steps"),
     ({"milestones": [5, 2]}, "milestones"), ({"gamma": 0.0}, "gamma")],
)  # fmt: skip
def test_bad_schedule_config(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ScheduleConfig(**kwargs)
