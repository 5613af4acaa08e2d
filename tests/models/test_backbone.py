"""The shared VLM: which vision features it reads, image-token layout, causal LLM, loading checks."""

from __future__ import annotations

import pytest
import torch
from tiny_models import tiny_backbone
from transformers import Dinov2Model, SiglipVisionModel

from vla.models.backbone import (
    BackboneConfig,
    VLMBackbone,
    _dino_config,
    _load_checked,
    _siglip_config,
    _tower_state_dict,
)


def test_vision_features_are_second_to_last_block_patch_tokens():
    """Fused features = [DINO hidden_states[N-1] without CLS, SigLIP hidden_states[N-1]] of the full towers."""
    torch.manual_seed(0)
    cfg = tiny_backbone()
    vlm = VLMBackbone(cfg).eval()
    full = BackboneConfig(**{**cfg.to_dict(), "feature_layer": -1})  # build the towers with all N blocks
    dino, siglip = Dinov2Model(_dino_config(full)).eval(), SiglipVisionModel(_siglip_config(full)).eval()
    for ours, theirs in ((vlm.vision_backbone.dino, dino), (vlm.vision_backbone.siglip, siglip)):
        sd = theirs.state_dict()
        sd.update({k: v for k, v in ours.state_dict().items()})
        theirs.load_state_dict(sd)
    px = torch.randn(2, 2, 6, cfg.image_size, cfg.image_size)
    got = vlm.vision_backbone(px)
    p = cfg.patches_per_image
    assert got.shape == (2, 2 * p, cfg.dino_hidden + cfg.siglip_hidden)
    flat = px.flatten(0, 1)
    d = dino(flat[:, :3], output_hidden_states=True).hidden_states[cfg.dino_layers - 1][:, 1:]
    s = siglip(flat[:, 3:], output_hidden_states=True).hidden_states[cfg.siglip_layers - 1]
    want = torch.cat([d, s], dim=-1).reshape(2, 2 * p, -1)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    # the second image's tokens follow the first image's along the patch axis
    torch.testing.assert_close(got[1, p:], vlm.vision_backbone(px[1:, 1:])[0])


def test_unused_tower_parts_are_not_built():
    cfg = tiny_backbone()
    vlm = VLMBackbone(cfg)
    assert len(vlm.vision_backbone.dino.encoder.layer) == cfg.dino_layers - 1
    assert len(vlm.vision_backbone.siglip.vision_model.encoder.layers) == cfg.siglip_layers - 1
    names = [n for n, _ in vlm.named_parameters()]
    assert not any("post_layernorm" in n or n.startswith("vision_backbone.dino.layernorm") for n in names)


def test_embed_multimodal_layout_and_query_replacement():
    torch.manual_seed(0)
    cfg = tiny_backbone()
    vlm = VLMBackbone(cfg).eval()
    ids = torch.tensor([[5, 6, 7, 9, 9, 0], [5, 6, 9, 9, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 0, 0]])
    queries = torch.randn(2, cfg.llm_hidden)
    px = torch.randn(2, 2, 6, cfg.image_size, cfg.image_size)
    emb, full_mask, qpos = vlm.embed_multimodal(px, ids, mask, queries)
    v = 2 * cfg.patches_per_image
    assert emb.shape == (2, 6 + v, cfg.llm_hidden) and full_mask.shape == (2, 6 + v)
    assert qpos.tolist() == [[v + 3, v + 4], [v + 2, v + 3]]  # the last 2 real tokens, shifted by the images
    torch.testing.assert_close(emb[0, qpos[0]], queries)
    torch.testing.assert_close(emb[1, qpos[1]], queries)
    torch.testing.assert_close(emb[:, 1 : 1 + v], vlm.embed_images(px))  # images right after token 0
    torch.testing.assert_close(emb[:, 0], vlm.embed_tokens(ids[:, 0]))
    assert full_mask[1].tolist() == [1] + [1] * v + [1, 1, 1, 0, 0]


def test_language_model_is_causal_and_returns_all_layers():
    torch.manual_seed(0)
    cfg = tiny_backbone()
    vlm = VLMBackbone(cfg).eval()
    x = torch.randn(1, 10, cfg.llm_hidden)
    mask = torch.ones(1, 10, dtype=torch.long)
    hs = vlm.run_language_model(x, mask)
    assert len(hs) == cfg.llm_layers + 1
    y = x.clone()
    y[:, 6:] += 1.0  # change the future
    hs2 = vlm.run_language_model(y, mask)
    for a, b in zip(hs[1:], hs2[1:]):
        torch.testing.assert_close(a[:, :6], b[:, :6])  # the past never sees it
        assert not torch.allclose(a[:, 6:], b[:, 6:])
    z = x.clone()
    z[:, 0] += 1.0  # change the first token: every later position sees it
    assert not torch.allclose(vlm.run_language_model(z, mask)[-1][:, 9], hs[-1][:, 9])


def test_language_model_uses_grouped_query_attention():
    vlm = VLMBackbone(BackboneConfig.cpu())
    attn = vlm.language_model.layers[0].self_attn
    assert attn.k_proj.out_features == 2 * 32 and attn.q_proj.out_features == 4 * 32


def test_config_checks_and_loader_refuses_mismatched_weights():
    with pytest.raises(ValueError, match="multiple of patch_size"):
        BackboneConfig.cpu(image_size=100)
    with pytest.raises(ValueError, match="llm_kv_heads"):
        BackboneConfig.cpu(llm_heads=4, llm_kv_heads=3)
    with pytest.raises(ValueError, match="unknown backbone config keys"):
        BackboneConfig.from_dict({"hiden": 3})
    vlm = VLMBackbone(tiny_backbone())
    other = VLMBackbone(tiny_backbone(llm_hidden=64, llm_mlp=64))
    with pytest.raises(ValueError, match="wrong shape"):
        _load_checked(vlm.language_model, other.language_model.state_dict(), "somewhere")


def test_pretrained_tower_weights_are_truncated_and_position_embeddings_resampled():
    cfg = tiny_backbone()
    vlm = VLMBackbone(cfg)
    bigger = BackboneConfig(**{**cfg.to_dict(), "feature_layer": -1, "image_size": 64})  # 16 patches vs 4
    hf = Dinov2Model(_dino_config(bigger))
    sd = _tower_state_dict(hf, cfg.built_layers(cfg.dino_layers), vlm.vision_backbone.dino)
    assert sd["embeddings.position_embeddings"].shape == (1, 1 + cfg.patches_per_image, cfg.dino_hidden)
    assert not any(k.startswith("encoder.layer.2.") for k in sd)
    _load_checked(vlm.vision_backbone.dino, sd, "hf dino")
