"""`pion-train model=lerobot ... resume=true` continues a tiny ACT run bit for bit: the trainer resumes from lerobot's
own `model.safetensors` in the checkpoint (its names are the training module's) plus its optimizer / RNG / sampler
state, so 3 steps + 3 resumed steps log the losses of 6 uninterrupted steps."""

from __future__ import annotations

from pathlib import Path

import pytest
from lerobot_fixtures import gen_demos_dataset
from lerobot_train_fixtures import losses, train_act

PION = ("optim=pion", "optim.pion.ns_dtype=float32", "checkpoint.every=3")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return gen_demos_dataset(tmp_path_factory.mktemp("lerobot_resume"), lengths=(11,), use_videos=False)


@pytest.mark.slow  # 12 ACT steps: 473 s measured under a concurrent 2-core job (idle time not measured)
def test_resume_continues_exactly(dataset, tmp_path, capsys):
    ref = train_act(dataset, tmp_path / "ref", *PION, "steps=6")
    train_act(dataset, tmp_path / "half", *PION, "steps=3")
    half = train_act(dataset, tmp_path / "half", *PION, "steps=6", "resume=true")
    assert "resumed" in capsys.readouterr().out
    assert len(losses(ref)) == 6 and losses(half) == losses(ref)
