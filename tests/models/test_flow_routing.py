"""The real-size flow-matching policy, built on the meta device: parameter counts and optimizer routing.

`pytest tests/models/test_flow_routing.py -s` prints the routing tables kept in docs/routing_tables.md.
"""

import pytest
import torch

from vla.models.flow_matching import FlowMatchingConfig, FlowMatchingPolicy
from vla.optim.routed import RoutedOptimizer
from vla.optim.routing import route_parameters


@pytest.fixture(scope="module")
def real_model() -> FlowMatchingPolicy:
    with torch.device("meta"):
        return FlowMatchingPolicy(FlowMatchingConfig())


def expert_params(
    h: int, depth: int, vlm: int, action_dim: int = 7, positions: int = 256, freq: int = 256
) -> int:
    """Parameter count of the DiT action expert, written out from the spec (models.md §3)."""
    block = 4 * (h * h + h)  # q, k, v, o
    block += (h * 4 * h + 4 * h) + (4 * h * h + h)  # MLP, ratio 4
    block += 6 * h * h + 6 * h  # adaLN-Zero modulation
    block += vlm * h + h  # vlm_proj of the block's VLM layer
    head = (action_dim * h + h) + positions * h  # input_proj + pos_embed
    head += (freq * h + h) + (h * h + h)  # t_embedder MLP
    head += (2 * h * h + 2 * h) + (h * action_dim + action_dim)  # final_layer: adaLN + linear
    return depth * block + head


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_real_size_counts(real_model):
    cfg = real_model.config
    assert cfg.expert_depth == 25 and cfg.backbone.llm_layers == 24  # one block per hidden state (L + 1)
    assert count(real_model.action_head) == expert_params(1024, 25, 896) == 498_895_879
    assert count(real_model.proprio_projector) == 8 * 896 + 896
    assert real_model.meta_queries.shape == (16, 896)
    assert count(real_model.language_model) == 494_032_768  # Qwen2.5-0.5B without lm_head (tied)


ROUTES = {
    # name: (vlanext, vla_adapter, muon, adamw)
    "action_head.blocks.0.attn.q_proj.weight": ("pion", "pion", "muon", "adamw"),
    "action_head.blocks.24.vlm_proj.weight": ("pion", "pion", "muon", "adamw"),
    "action_head.blocks.3.adaLN_modulation.1.weight": ("pion", "pion", "muon", "adamw"),
    "action_head.input_proj.weight": ("pion", "pion", "muon", "adamw"),
    "action_head.final_layer.linear.weight": ("adamw", "pion", "muon", "adamw"),
    "action_head.final_layer.adaLN_modulation.1.weight": ("adamw", "pion", "muon", "adamw"),
    "action_head.t_embedder.mlp.0.weight": ("adamw", "adamw", "adamw", "adamw"),
    "action_head.pos_embed": ("adamw", "adamw", "adamw", "adamw"),
    "action_head.blocks.0.mlp.0.bias": ("adamw", "adamw", "adamw", "adamw"),
    "meta_queries": ("muon", "muon", "muon", "adamw"),
    "proprio_projector.weight": ("muon", "muon", "muon", "adamw"),
    "projector.fc1.weight": ("muon", "muon", "muon", "adamw"),
    "language_model.layers.0.self_attn.q_proj.weight": ("muon", "muon", "muon", "adamw"),
    "language_model.embed_tokens.weight": ("adamw", "adamw", "adamw", "adamw"),
    "vision_backbone.siglip.vision_model.encoder.layers.0.mlp.fc1.weight": ("muon", "muon", "muon", "adamw"),
}
PRESETS = ("vlanext", "vla_adapter", "muon", "adamw")


@pytest.mark.parametrize("preset", PRESETS)
def test_every_parameter_routes(real_model, preset):
    routes = {r.name: r.rule.target for r in route_parameters(real_model.named_parameters(), preset)}
    trainable = [n for n, p in real_model.named_parameters() if p.requires_grad]
    assert sorted(routes) == sorted(trainable)  # none unrouted (route_parameters raises otherwise)
    for name, targets in ROUTES.items():
        assert routes[name] == targets[PRESETS.index(preset)], (preset, name)


def test_routing_tables_print(real_model, capsys):
    """The tables of docs/routing_tables.md; per-head mode finds the expert's 16 heads as well as Qwen's."""
    for preset in ("vlanext", "vla_adapter", "muon", "adamw"):
        RoutedOptimizer(real_model, preset=preset, lr=1e-4)
    RoutedOptimizer(real_model, preset="vlanext", lr=1e-4, per_head=True)
    out = capsys.readouterr().out
    with capsys.disabled():
        print("\n" + out)
    assert out.count("total 1,708,335,271 parameters") == 5
    assert "16 on dim 0" in out and "16 on dim 1" in out  # the expert's q/k/v and o, per head
