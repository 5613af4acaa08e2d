"""The π0.5 robot recipe (configs/experiment/pi05_droid_pion.yaml) run by pion-train itself on a tiny randomly
initialised lerobot `pi05` and a tiny DROID dataset written by deploy's recorder: the recipe's routing (VL tower
Muon, action expert Pion), finite losses, a checkpoint that declares droid_joint_velocity (accepted by a DROID
executor, refused by LIBERO) and reloads offline with its tokenizer, giving the same actions for the same noise.

Offline stand-ins: lerobot's PaliGemma sizes are patched to toy widths (tests/deploy/test_droid_pi05_recipe.py) and
the PaliGemma tokenizer is replaced by our byte-level one through `model.tokenizer_path` (a real run passes the
local PaliGemma tokenizer directory there)."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from lerobot_train_fixtures import losses, observation

sys.path.insert(0, str(Path(__file__).parents[1] / "deploy"))  # tiny_pi05_sizes
sys.path.insert(0, str(Path(__file__).parents[1] / "data"))  # deploy recorder episodes
from test_droid_layouts import _episode, _record_pion  # noqa: E402  (tests/data: deploy's recorder, tiny DROID)
from test_droid_pi05_recipe import tiny_pi05_sizes  # noqa: E402

from vla.cli.train import main  # noqa: E402
from vla.conventions import ConventionError  # noqa: E402
from vla.models.tokenizer import build_byte_tokenizer  # noqa: E402
from vla.policies import load_policy  # noqa: E402

FACTORY = "vla.interop.lerobot.protocol_policy:load_lerobot_policy"


@pytest.fixture(scope="module")
def droid(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("droid_pi05")
    _record_pion(root / "dataset", [_episode(11, seed) for seed in range(2)])
    build_byte_tokenizer().save_pretrained(root / "tokenizer")
    return root / "dataset", root / "tokenizer"


def test_pi05_recipe_trains_through_pion_train(droid, tmp_path, capsys):
    dataset, tokenizer = droid
    with tiny_pi05_sizes():
        main([
            "+experiment=pi05_droid_pion", "model.pretrained_path=null", f"model.tokenizer_path={tokenizer}",
            "model.overrides.chunk_size=4", "model.overrides.n_action_steps=4", "model.overrides.dtype=float32",
            "+model.overrides.image_resolution=[32,32]", "+model.overrides.tokenizer_max_length=48",
            f"data.root={dataset}", "steps=3", "batch_size=4", "num_workers=0", "device=cpu",
            "schedule.warmup_steps=1", "schedule.decay_steps=10", f"out_dir={tmp_path}", "run_name=r",
            "log.every=1", "log.progress=false", "log.tensorboard=false", "log.update_norms=false",
            "optim.pion.ns_dtype=float32", "optim.muon.ns_dtype=float32",
        ])  # fmt: skip
        rows = [line.split() for line in capsys.readouterr().out.splitlines()]
        assert any(r[:3] == ["VL", "tower", "muon"] for r in rows)
        assert any(r[:3] == ["action", "expert", "pion"] for r in rows)
        assert all(math.isfinite(v) for v in losses(tmp_path / "r")) and len(losses(tmp_path / "r")) == 3

        export = tmp_path / "r/checkpoints/step_00000003/pretrained"
        meta = json.loads((export / "pion_lerobot.json").read_text())
        assert meta["policy_type"] == "pi05" and meta["action_space"] == "droid_joint_velocity"
        assert (export / "tokenizer/tokenizer.json").is_file()
        policy = load_policy(FACTORY, path=str(export), device="cpu", action_space="droid_joint_velocity")
        assert policy.spec.action_dim == 8 and policy.spec.chunk_len == 4
        obs = observation(policy.spec)
        torch.manual_seed(0)
        first = policy.predict_chunk(obs)
        again = load_policy(FACTORY, path=str(export), device="cpu")
        torch.manual_seed(0)
        np.testing.assert_array_equal(again.predict_chunk(obs), first)
        with pytest.raises(ConventionError, match="droid_joint_velocity"):
            load_policy(FACTORY, path=str(export), device="cpu", action_space="libero_osc_delta")
