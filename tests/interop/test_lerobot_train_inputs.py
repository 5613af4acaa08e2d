"""`pion-train model=lerobot` on tiny ACT: optim=muon / adamw route it with the Muon baseline / AdamW (routing table
printed), bad input is one line and exit 2 before any data is read, and the protocol refuses a batch that does
not fit the checkpoint."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from lerobot_fixtures import gen_demos_dataset
from lerobot_train_fixtures import losses, observation, train_act

from vla.interop.lerobot.protocol_policy import load_lerobot_policy
from vla.protocol import ProtocolError


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return gen_demos_dataset(tmp_path_factory.mktemp("lerobot_train"), lengths=(11,), use_videos=False)


@pytest.mark.parametrize(
    "optim, preset, matrices",
    [("muon", "act_muon", "muon"), ("adamw", "adamw", None)],
)
def test_act_muon_and_adamw_routing(dataset, tmp_path, capsys, optim, preset, matrices):
    extra = [f"optim.{optim}.ns_dtype=float32"] if optim == "muon" else []
    run = train_act(dataset, tmp_path, f"optim={optim}", "steps=2", *extra)
    log = capsys.readouterr().out
    assert f"preset '{preset}'" in log
    rows = [line.split() for line in log.splitlines()]
    if matrices:
        assert any(r[:4] == ["transformer", "layers", matrices, "14"] for r in rows)
    else:
        assert any(r[:2] == ["everything", "adamw"] for r in rows)
    assert len(losses(run)) == 2 and all(math.isfinite(v) for v in losses(run))
    if optim == "adamw":  # the protocol refuses a batch that does not fit the checkpoint
        policy = load_lerobot_policy(run / "checkpoints/step_00000002/pretrained", device="cpu")
        bad = observation(policy.spec)
        bad["observation.state"] = bad["observation.state"][:, :7]
        with pytest.raises(ProtocolError, match="observation.state shape"):
            policy.predict_chunk(bad)


@pytest.mark.parametrize(
    "override, message",
    [
        ("model.policy_type=actt", "model.policy_type 'actt' is not a lerobot policy type"),
        (
            "model.pretrained_path=/nonexistent/act",
            "model.pretrained_path='/nonexistent/act' is not a local directory",
        ),
        ("+model.overridez={}", "unknown model keys ['overridez'] for model=lerobot"),
        ("++model.overrides={chunk_sise: 4}", "model.overrides do not fit lerobot's act config"),
    ],
)
def test_bad_input_is_one_line(dataset, tmp_path, capsys, override, message):
    with pytest.raises(SystemExit) as e:
        train_act(dataset, tmp_path, override, "steps=1")
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "r").exists()
