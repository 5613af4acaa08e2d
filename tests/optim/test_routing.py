"""Routing presets on a tiny real transformers Qwen2 inside a VLA-shaped module; the routed optimizer."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from vla.optim import Pion, RoutedOptimizer, build_optimizer, head_param_groups

transformers = pytest.importorskip("transformers")
CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "optim"


def _qwen2():
    cfg = transformers.Qwen2Config(
        hidden_size=64,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=96,
        num_hidden_layers=2,
        vocab_size=128,
    )
    return transformers.Qwen2ForCausalLM(cfg)


class _Vision(nn.Module):
    def __init__(self):
        super().__init__()
        self.patch_embed = nn.Conv2d(3, 64, 4, 4)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, 64))
        self.blocks = nn.Sequential(nn.Linear(64, 64), nn.LayerNorm(64))


class _ActionHead(nn.Module):
    def __init__(self):
        super().__init__()
        self.model = nn.Module()
        self.model.fc1 = nn.Linear(128, 64)
        self.model.blocks = nn.ModuleList(
            [nn.ModuleDict({"q_proj": nn.Linear(64, 64), "ffn": nn.Linear(64, 64)})]
        )
        self.model.fc2 = nn.Linear(64, 7)


class TinyVLAAdapter(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.vision_backbone = _Vision()
        self.language_model = _qwen2()
        self.projector = nn.Linear(64, 64)
        self.action_head = _ActionHead()
        self.action_queries = nn.Embedding(8, 64)


EXPECTED_VLA_ADAPTER = {
    "vision_backbone.patch_embed.weight": "muon",  # conv, and patch_embed is not an "embedding"
    "vision_backbone.patch_embed.bias": "adamw",
    "vision_backbone.cls_token": "adamw",
    "vision_backbone.blocks.0.weight": "muon",
    "vision_backbone.blocks.1.weight": "adamw",
    "language_model.model.embed_tokens.weight": "adamw",
    "language_model.model.layers.0.self_attn.q_proj.weight": "muon",
    "language_model.model.layers.0.self_attn.q_proj.bias": "adamw",
    "language_model.model.layers.1.mlp.down_proj.weight": "muon",
    "language_model.model.norm.weight": "adamw",
    "language_model.lm_head.weight": "adamw",
    "projector.weight": "muon",
    "action_head.model.fc1.weight": "pion",
    "action_head.model.blocks.0.q_proj.weight": "pion",
    "action_head.model.blocks.0.ffn.weight": "pion",
    "action_head.model.fc2.weight": "adamw",
    "action_queries.weight": "adamw",
}


def _build(model, **kw):
    lines = []
    opt = RoutedOptimizer(model, print_fn=lines.append, **kw)
    return opt, "\n".join(lines)


def _all_routes(opt):
    return {r.name: r.rule.target for r in opt.routes}


def test_vla_adapter_preset_routes_every_named_group():
    model = TinyVLAAdapter()
    opt, table = _build(model, preset="vla_adapter", lr=1e-3)
    routes = _all_routes(opt)
    for name, target in EXPECTED_VLA_ADAPTER.items():
        assert routes[name] == target, name
    assert set(routes) == {n for n, p in model.named_parameters()}  # every parameter routed exactly once
    for bucket in (
        "action head",
        "language",
        "vision",
        "embeddings",
        "action queries",
        "action head final projection",
    ):
        assert bucket in table
    assert "total" in table and f"{sum(p.numel() for p in model.parameters()):,}" in table


def test_muon_pion_adamw_presets():
    model = TinyVLAAdapter()
    muon = _all_routes(_build(model, preset="muon")[0])
    pion = _all_routes(_build(model, preset="pion")[0])
    adamw = _all_routes(_build(model, preset="adamw")[0])
    assert muon["action_head.model.fc1.weight"] == "muon" and pion["projector.weight"] == "pion"
    assert muon["action_head.model.fc2.weight"] == pion["action_head.model.fc2.weight"] == "adamw"
    assert set(adamw.values()) == {"adamw"}


def test_vlanext_preset_and_aux_lr_ratio():
    model = nn.Module()
    model.visual = nn.Linear(32, 32)
    model.language_model = _qwen2()
    model.connector = nn.Linear(32, 64)
    model.action_head = nn.Module()
    model.action_head.blocks = nn.Linear(64, 64)
    model.action_head.final_layer = nn.Linear(64, 7)
    opt, _ = _build(model, preset="vlanext", lr=1e-3)
    routes = _all_routes(opt)
    assert routes["visual.weight"] == routes["connector.weight"] == "muon"
    assert routes["action_head.blocks.weight"] == "pion"
    assert (
        routes["action_head.final_layer.weight"]
        == routes["language_model.model.embed_tokens.weight"]
        == "adamw"
    )
    assert [g["lr"] for g in opt.children["adamw"].param_groups] == pytest.approx([1e-4] * 3)
    assert {g["lr"] for g in opt.children["pion"].param_groups} == {1e-3}


def test_pi05_preset():
    model = nn.Module()
    model.paligemma_with_expert = nn.Module()
    model.paligemma_with_expert.paligemma = _qwen2()
    model.paligemma_with_expert.gemma_expert = _qwen2()
    for name in ("action_in_proj", "action_out_proj", "state_proj", "time_mlp_in", "extra_proj"):
        setattr(model, name, nn.Linear(64, 64))
    routes = _all_routes(_build(model, preset="pi05")[0])
    assert routes["paligemma_with_expert.paligemma.model.layers.0.mlp.up_proj.weight"] == "muon"
    assert routes["paligemma_with_expert.paligemma.model.embed_tokens.weight"] == "adamw"
    assert routes["paligemma_with_expert.gemma_expert.model.layers.1.self_attn.o_proj.weight"] == "pion"
    assert (
        routes["action_in_proj.weight"]
        == routes["state_proj.weight"]
        == routes["time_mlp_in.weight"]
        == "pion"
    )
    assert routes["action_out_proj.weight"] == routes["extra_proj.weight"] == "adamw"


def test_user_rules_come_first_and_unrouted_is_an_error():
    model = TinyVLAAdapter()
    opt, table = _build(
        model,
        preset="vla_adapter",
        rules=[{"bucket": "projector on pion", "target": "pion", "pattern": r"^projector\."}],
    )
    assert _all_routes(opt)["projector.weight"] == "pion"
    assert "projector on pion" in table
    with pytest.raises(ValueError, match="matched no routing rule"):
        _build(
            model, preset="custom", rules=[{"target": "muon", "pattern": "language_model", "max_ndim": None}]
        )
    with pytest.raises(ValueError, match="matched no routing rule"):  # vectors are never claimed by Pion
        _build(model, preset="custom", rules=[{"target": "pion", "pattern": ".*"}])
    with pytest.raises(ValueError):
        _build(model, preset="nope")
    with pytest.raises(ValueError):
        _build(model, rules=[{"target": "sgd", "pattern": "x"}])


def _fake_grads(model, seed):
    gen = torch.Generator().manual_seed(seed)
    for p in model.parameters():
        p.grad = torch.randn(p.shape, generator=gen)


def test_routed_per_head_equals_direct_per_head_pion():
    """Every call site honours the per-head spec: routed and hand-built groups give the same step."""
    routed_model, direct_model = _qwen2(), _qwen2()
    direct_model.load_state_dict(routed_model.state_dict())
    opt, table = _build(routed_model, preset="pion", per_head=True, lr=1e-2, pion={"promotion_steps": 1})
    assert "2 on dim 0" in table and "4 on dim 1" in table
    matrices = [
        p
        for n, p in direct_model.named_parameters()
        if p.ndim == 2 and "embed" not in n and "lm_head" not in n
    ]
    direct = Pion(head_param_groups(direct_model, matrices), lr=1e-2, promotion_steps=1)
    for step in range(2):
        _fake_grads(routed_model, step)
        _fake_grads(direct_model, step)
        opt.step()
        direct.step()
    for (name, a), b in zip(routed_model.named_parameters(), direct_model.parameters()):
        if b.ndim == 2 and "embed" not in name and "lm_head" not in name:
            torch.testing.assert_close(a, b, atol=0, rtol=0)


def test_routed_state_dict_resume_is_identical_and_schedulers_work(tmp_path):
    models = [TinyVLAAdapter(), TinyVLAAdapter()]
    opt = _build(models[0], preset="vla_adapter", lr=1e-3, per_head=True)[0]
    for step in range(2):
        _fake_grads(models[0], step)
        opt.step()
    torch.save({"model": models[0].state_dict(), "opt": opt.state_dict()}, tmp_path / "ckpt.pt")
    ckpt = torch.load(tmp_path / "ckpt.pt", weights_only=True)
    models[1].load_state_dict(ckpt["model"])
    resumed = _build(models[1], preset="vla_adapter", lr=1e-3, per_head=True)[0]
    resumed.load_state_dict(ckpt["opt"])
    assert resumed.children["adamw"].state is resumed.state  # children still see the loaded state
    for m, o in zip(models, (opt, resumed)):
        sched = torch.optim.lr_scheduler.LambdaLR(o, lambda s: 0.5)
        assert {g["lr"] for g in o.children["pion"].param_groups} == {5e-4}
        _fake_grads(m, 7)
        o.step()
        sched.step()
    for a, b in zip(*(m.parameters() for m in models)):
        assert torch.equal(a, b)
    with pytest.raises(NotImplementedError):
        opt.add_param_group({"params": [nn.Parameter(torch.zeros(2, 2))]})


@pytest.mark.parametrize("name", ["pion", "muon", "adamw"])
def test_build_optimizer_from_shipped_configs(name):
    omegaconf = pytest.importorskip("omegaconf")
    cfg = omegaconf.OmegaConf.load(CONFIGS / f"{name}.yaml")
    model = TinyVLAAdapter()
    opt = build_optimizer(model, cfg, verbose=False)
    assert opt.preset == cfg.preset
    _fake_grads(model, 0)
    opt.step()
    if name == "pion":
        assert opt.optimizer_of("action_head.model.fc1.weight") == "pion"
        assert opt.children["pion"].param_groups[0]["scale_factor"] == 0.2
    with pytest.raises(ValueError, match="unknown optimizer config keys"):
        build_optimizer(model, {**omegaconf.OmegaConf.to_container(cfg), "lr_typo": 1.0})
