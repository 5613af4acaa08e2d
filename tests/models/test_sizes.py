"""Real-size VLA-Adapter on the meta device: parameter counts vs the reference, optimizer routing."""

from __future__ import annotations

import pytest

from vla.models.sizes import FILM_GEN_PER_BLOCK, meta_model, parameter_counts
from vla.optim.routing import route_parameters


@pytest.fixture(scope="module")
def real_model():
    return meta_model("vla_adapter")


def test_reference_parameter_counts(real_model):
    counts = parameter_counts(real_model)
    assert counts["action_queries"] == 57_344  # 64 x 896
    assert counts["proprio_projector"] == 811_776  # ≈ 0.81M
    film_gen = 24 * FILM_GEN_PER_BLOCK(896)
    assert film_gen == 38_578_176  # ≈ 38.6M, the reference's unused FiLM generator (not built here)
    assert counts["action_head"] + film_gen == 217_864_223  # Pro head ≈ 217.9M
    assert counts["projector"] == 2176 * 8704 + 8704 + 8704 * 896 + 896 + 896 * 896 + 896
    assert counts["language_model.embed_tokens"] == 151_936 * 896
    assert counts["language_model.layers"] + counts["language_model.norm"] == 494_032_768 - 151_936 * 896
    assert len(real_model.language_model.layers) == 24 and real_model.config.num_raw_tokens == 512


@pytest.mark.parametrize("preset", ["vla_adapter", "muon", "adamw", "pion"])
def test_real_model_routes_with_no_unrouted_parameter(real_model, preset):
    routes = {r.name: r.rule for r in route_parameters(real_model.named_parameters(), preset)}
    trainable = [n for n, p in real_model.named_parameters() if p.requires_grad]
    assert sorted(routes) == sorted(trainable)
    if preset == "adamw":
        return
    head = "pion" if preset in ("vla_adapter", "pion") else "muon"
    backbone = "pion" if preset == "pion" else "muon"
    expected = {
        "action_head.blocks.0.q_proj.weight": head,
        "action_head.fc1.weight": head,
        "action_head.fc2.weight": "adamw",  # the final hidden -> 7 projection
        "action_head.blocks.3.gating_factor": "adamw",
        "action_queries.weight": "adamw",
        "language_model.embed_tokens.weight": "adamw",
        "language_model.layers.0.self_attn.q_proj.weight": backbone,
        "language_model.layers.0.self_attn.q_proj.bias": "adamw",
        "vision_backbone.dino.embeddings.cls_token": "adamw",
        "vision_backbone.dino.embeddings.register_tokens": "adamw",
        "vision_backbone.dino.embeddings.position_embeddings": "adamw",
        "vision_backbone.dino.embeddings.patch_embeddings.projection.weight": backbone,
        "vision_backbone.siglip.vision_model.embeddings.patch_embedding.weight": backbone,
        "vision_backbone.siglip.vision_model.encoder.layers.0.mlp.fc1.weight": backbone,
        "projector.fc1.weight": backbone,
        "proprio_projector.fc2.weight": backbone,
    }
    assert {k: routes[k].target for k in expected} == expected
    assert "vision_backbone.dino.embeddings.mask_token" not in routes  # frozen: never used
