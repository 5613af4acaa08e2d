"""LoRA on the backbone: adapters on every backbone Linear (not the head), backbone frozen, head and
ActionQuery trained in full, adapters routed by the optimizer presets, export folds them back in."""

from __future__ import annotations

import builtins
import json

import pytest
import torch
from safetensors.torch import load_file
from train_tiny import TinyConfig, TinyPolicy, run

from vla.optim import build_optimizer
from vla.train.config import LoRAConfig
from vla.train.lora import PEFT_MISSING, apply_lora, lora_targets, merged_copy


def test_missing_peft_gives_clear_error(monkeypatch):
    real_import = builtins.__import__

    def no_peft(name, *args, **kwargs):
        if name == "peft" or name.startswith("peft."):
            raise ImportError("No module named 'peft'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_peft)
    with pytest.raises(ImportError, match="lora.enabled=true needs the `peft` package") as err:
        apply_lora(TinyPolicy(TinyConfig()), LoRAConfig(enabled=True, r=4))
    assert str(err.value) == PEFT_MISSING


def test_targets_are_backbone_linears_only():
    names = lora_targets(TinyPolicy(TinyConfig()), LoRAConfig(enabled=True))
    assert names == [
        "vision_backbone.0",
        "projector",
        "language_model.layers.0.0",
        "language_model.layers.1.0",
    ]


def test_lora_freezes_backbone_routes_adapters_and_merges():
    pytest.importorskip("peft")
    torch.manual_seed(0)
    model = TinyPolicy(TinyConfig()).eval()  # eval: no input noise
    x = {"pixel_values": torch.rand(3, 2, 3, 8, 8), "proprio": torch.randn(3, 8)}
    before = model.sample_actions(x)
    apply_lora(model, LoRAConfig(enabled=True, r=4))
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert all(
        "lora_" in n for n in trainable if n.startswith(("vision_backbone", "projector", "language_model"))
    )
    assert {
        "action_queries",
        "action_head.fc1.weight",
        "action_head.fc2.weight",
        "proprio_projector.weight",
    } <= trainable
    assert "projector.base_layer.weight" not in trainable
    lora_a = next(n for n in trainable if "lora_A" in n)
    assert torch.allclose(model.sample_actions(x), before)  # B = 0 at init: same function
    opt = build_optimizer(model, {"preset": "vla_adapter", "verbose": False})
    assert opt.optimizer_of(lora_a) == "muon" and opt.optimizer_of("action_head.fc1.weight") == "pion"
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_()
    adapted = model.sample_actions(x)
    plain = merged_copy(model).eval()
    assert not any("lora_" in n for n, _ in plain.named_parameters())
    assert set(plain.state_dict()) == set(TinyPolicy(TinyConfig()).state_dict())
    assert torch.allclose(plain.sample_actions(x), adapted, atol=1e-5)


def test_lora_training_run_checkpoints_and_resumes(tmp_path):
    pytest.importorskip("peft")
    cfg = {"steps": 6, "batch_size": 8, "num_workers": 0, "out_dir": str(tmp_path), "run_name": "r",
           "lora": {"enabled": True, "r": 4}, "checkpoint": {"every": 3},
           "log": {"every": 1, "progress": False, "tensorboard": False}}  # fmt: skip
    first = run(cfg)
    ckpt = first.run_dir / "checkpoints/step_00000003"
    meta = json.loads((ckpt / "meta.json").read_text())
    assert meta["weights"] == "weights.safetensors"  # adapters kept for resume
    exported = load_file(ckpt / "pretrained/model.safetensors")
    assert not any("lora_" in k for k in exported) and "projector.weight" in exported
    resumed = run({**cfg, "steps": 8, "resume": True})
    assert resumed.step == 8
