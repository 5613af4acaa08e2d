"""Loading the backbone from local HF-format directories; the model YAMLs build valid configs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from tiny_models import observation, tiny_backbone
from transformers import Dinov2WithRegistersModel, Qwen2ForCausalLM, SiglipVisionConfig, SiglipVisionModel

from vla.models.backbone import (
    BackboneConfig,
    VLMBackbone,
    _dino_config,
    load_pretrained_weights,
    qwen2_config,
)
from vla.models.processor import default_stats
from vla.models.registry import build_model, build_processor, model_config_from_dict
from vla.models.tokenizer import build_byte_tokenizer

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "model"


def test_backbone_loads_local_hf_directories(tmp_path):
    torch.manual_seed(0)
    cfg = tiny_backbone(dino_registers=2)
    full = BackboneConfig(
        **{**cfg.to_dict(), "feature_layer": -1, "image_size": 64}
    )  # 518-vs-224-like resample
    dino = Dinov2WithRegistersModel(_dino_config(full))
    siglip = SiglipVisionModel(
        SiglipVisionConfig(
            hidden_size=32,
            num_hidden_layers=3,
            num_attention_heads=2,
            intermediate_size=64,
            image_size=cfg.image_size,
            patch_size=cfg.patch_size,
        )  # fmt: skip
    )  # with its pooling head and post-LN, as published
    llm = Qwen2ForCausalLM(qwen2_config(cfg))
    for name, m in (("dino", dino), ("siglip", siglip), ("llm", llm)):
        m.save_pretrained(tmp_path / name)
    build_byte_tokenizer().save_pretrained(tmp_path / "llm")
    paths = {f"{n}_path": str(tmp_path / n) for n in ("dino", "siglip", "llm")}
    cfg = BackboneConfig(**{**cfg.to_dict(), **paths})
    vlm = VLMBackbone(cfg)
    load_pretrained_weights(vlm, cfg)
    torch.testing.assert_close(
        vlm.language_model.layers[1].mlp.up_proj.weight, llm.model.layers[1].mlp.up_proj.weight
    )
    torch.testing.assert_close(
        vlm.vision_backbone.siglip.vision_model.encoder.layers[1].self_attn.q_proj.weight,
        siglip.vision_model.encoder.layers[1].self_attn.q_proj.weight,
    )
    torch.testing.assert_close(
        vlm.vision_backbone.dino.embeddings.register_tokens, dino.embeddings.register_tokens
    )
    px = torch.randn(1, 6, cfg.image_size, cfg.image_size)
    want = siglip(px[:, 3:], output_hidden_states=True).hidden_states[2]
    torch.testing.assert_close(vlm.vision_backbone(px[:, None])[..., 32:], want)


def test_missing_weight_directory_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cfg = tiny_backbone(llm_path="/nonexistent/Qwen2.5-0.5B")
    with pytest.raises(FileNotFoundError, match=r"backbone.llm_path.*PION_WEIGHTS_DIR"):
        load_pretrained_weights(VLMBackbone(tiny_backbone()), cfg)


def _yaml(name: str) -> dict:
    return OmegaConf.to_container(OmegaConf.load(CONFIGS / name), resolve=True)


def test_real_size_yaml_is_the_reference_configuration(monkeypatch):
    monkeypatch.setenv("PION_WEIGHTS_DIR", "/weights")
    cfg = _yaml("vla_adapter.yaml")
    config = model_config_from_dict(cfg)
    paths = ("dino_path", "siglip_path", "llm_path", "prismatic_path")
    sizes = {k: v for k, v in config.backbone.to_dict().items() if k not in paths}
    assert sizes == {k: v for k, v in BackboneConfig.real().to_dict().items() if k not in paths}
    assert config.backbone.llm_path == "/weights/Qwen2.5-0.5B"
    assert (config.num_action_queries, config.head_blocks, config.head_heads, config.num_raw_tokens) == (
        64,
        24,
        8,
        512,
    )
    assert (config.chunk_len, config.action_dim, config.proprio_dim) == (8, 7, 8)


def test_cpu_yaml_builds_a_model_that_trains():
    cfg = _yaml("vla_adapter_cpu.yaml")
    config = model_config_from_dict(cfg)
    model = build_model(config, pretrained=False)
    processor = build_processor(config, cfg["processor"], default_stats())
    inputs = processor(observation(2, size=256, with_action=True), train=True)
    loss, _ = model.compute_loss(inputs)
    loss.backward()
    assert inputs["pixel_values"].shape == (2, 2, 6, 128, 128) and torch.isfinite(loss)
    with pytest.raises(ValueError, match="contradicts the model"):
        build_processor(config, {**cfg["processor"], "num_queries": 64}, default_stats())
    with pytest.raises(ValueError, match="unknown vla_adapter config keys"):
        model_config_from_dict({**cfg, "num_task_tokens": 512})
