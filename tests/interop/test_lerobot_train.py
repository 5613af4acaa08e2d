"""`pion-train model=lerobot`: lerobot's own ACT trained with Pion routing by our entry point (vla.cli.train.main,
in process) on a tiny pion-gen-demos dataset: the loss falls on a fixed batch, the checkpoint is lerobot's format
plus ours, and it reloads through our protocol and through lerobot's stock loader with the trained model's actions."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from lerobot_fixtures import gen_demos_dataset
from lerobot_train_fixtures import BATCH, losses, observation, train_act

from vla.interop.lerobot import training
from vla.interop.lerobot.protocol_policy import LerobotProtocolPolicy, load_lerobot_policy


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return gen_demos_dataset(tmp_path_factory.mktemp("lerobot_train"), lengths=(11,), use_videos=False)


def test_act_pion_trains_checkpoints_and_reloads(dataset, tmp_path, monkeypatch, capsys):
    built = {}

    def capture(*args, **kwargs):
        built["policy"], built["processor"] = out = real(*args, **kwargs)
        return out

    real = training.build_policy
    monkeypatch.setattr(training, "build_policy", capture)
    run = train_act(
        dataset, tmp_path, "optim=pion", "optim.pion.ns_dtype=float32", "steps=20", "checkpoint.every=0"
    )
    log = capsys.readouterr().out
    assert "optim.preset vla_adapter -> act" in log and "preset 'act'" in log
    assert any(line.split()[:4] == ["transformer", "layers", "pion", "14"] for line in log.splitlines())

    curve = losses(run)
    assert len(curve) == 20 and all(math.isfinite(v) for v in curve)
    assert np.mean(curve[-5:]) < np.mean(curve[:5]) - 0.3, curve  # the fixed batch of BATCH samples is learnt
    assert len(built["processor"].meta["image_shapes"]) == 1 and BATCH == 8

    ckpt = run / "checkpoints/step_00000020"
    meta = json.loads((ckpt / "meta.json").read_text())
    assert meta["weights"] == "pretrained/model.safetensors"  # resume reads lerobot's own export
    assert meta["model_type"] == "lerobot:act" and meta["action_space"] == "libero_osc_delta"
    export = ckpt / "pretrained"
    assert json.loads((export / "config.json").read_text())["type"] == "act"
    assert {"pion_lerobot.json", "stats.json", "policy_preprocessor.json", "model.safetensors"} <= {
        p.name for p in export.iterdir()
    }

    trained = LerobotProtocolPolicy(built["policy"], built["processor"])
    reloaded = load_lerobot_policy(export, device="cpu")
    assert reloaded.spec.action_space == "libero_osc_delta" and reloaded.spec.chunk_len == 4
    assert (
        reloaded.spec.image_shapes == {"observation.images.image": (32, 32, 3)} == trained.spec.image_shapes
    )
    obs = observation(reloaded.spec)
    want = trained.predict_chunk(obs)
    assert want.shape == (2, 4, 7) and np.abs(want).max() > 0
    np.testing.assert_array_equal(reloaded.predict_chunk(obs), want)
    # the directory is a policy spec like any checkpoint (pion-serve policy=<dir>, pion-eval policy=<dir>)
    from vla.policies import load_policy

    by_spec = load_policy(str(export), device="cpu", action_space="libero_osc_delta")
    assert isinstance(by_spec, LerobotProtocolPolicy)
    np.testing.assert_array_equal(by_spec.predict_chunk(obs), want)
    # lerobot's own loader (what lerobot-eval does) reads the same directory and acts the same
    from envs.eval.lerobot_policy import load as lerobot_stock

    np.testing.assert_array_equal(lerobot_stock(str(export), device="cpu").predict_chunk(obs), want)
