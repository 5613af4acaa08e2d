"""The Pion paper's π0.5 robot recipe (configs/experiment/pi05_droid_pion.yaml) on a tiny randomly initialised
lerobot `pi05` policy: every parameter routed (VL tower -> Muon, action expert -> Pion with k_p 0, s 2.0, μ 0.95,
no Nesterov; embeddings / vectors / action_out_proj -> AdamW), the schedule is warmup 1k -> 2.5e-5 -> cosine to
2.5e-6 over 30k, and one optimizer step on the flow-matching loss steps every routed group.

lerobot 0.6.1's PI05Config only offers the real Gemma sizes (gemma_300m / gemma_2b) and PaliGemmaWithExpertModel
hard-codes the SigLIP MLP and projector widths, so the tiny model patches `get_gemma_config` and hands a vision
config that keeps tiny widths. Nothing is read from the hub: PI05Policy builds PaliGemma from transformers'
default config, randomly initialised (only its processor needs the PaliGemma tokenizer, which is not used here).
"""

from __future__ import annotations

import math
from contextlib import contextmanager

import pytest
import torch
from omegaconf import OmegaConf

from vla.config import compose
from vla.optim import build_optimizer
from vla.train.config import ScheduleConfig
from vla.train.schedules import lr_factor

pi05_modeling = pytest.importorskip("lerobot.policies.pi05.modeling_pi05")

WIDTH, EXPERT_WIDTH, VISION = 64, 32, 32


def recipe() -> dict:
    cfg = compose("train", ["+experiment=pi05_droid_pion"])
    return OmegaConf.to_container(cfg, resolve=False)


@contextmanager
def tiny_pi05_sizes():
    """Patch lerobot's size tables so a PI05Policy builds at toy width (restored on exit)."""
    from transformers import PaliGemmaConfig, SiglipVisionConfig

    def gemma(variant: str):
        width = WIDTH if variant == "gemma_2b" else EXPERT_WIDTH
        # 8 heads: lerobot's joint attention reshapes to 8 * head_dim (openpi's Gemma head count)
        return pi05_modeling.GemmaConfig(width=width, depth=2, mlp_dim=2 * width, num_heads=8, num_kv_heads=1,
                                         head_dim=8)  # fmt: skip

    def paligemma():
        vision = SiglipVisionConfig(
            hidden_size=VISION, num_hidden_layers=1, num_attention_heads=2, patch_size=16
        )
        return PaliGemmaConfig(vision_config=vision)

    def build_paligemma(config):
        # PaliGemmaWithExpertModel sets the real So400m MLP width (4304) and Gemma-2B projector width (2048)
        config.vision_config.intermediate_size = 2 * VISION
        config.vision_config.projection_dim = config.text_config.hidden_size
        return real_cls(config=config)

    saved = {k: getattr(pi05_modeling, k) for k in
             ("get_gemma_config", "CONFIG_MAPPING", "PaliGemmaForConditionalGenerationWithPiGemma")}  # fmt: skip
    real_cls = saved["PaliGemmaForConditionalGenerationWithPiGemma"]
    pi05_modeling.get_gemma_config = gemma
    pi05_modeling.CONFIG_MAPPING = {"paligemma": paligemma, "gemma": saved["CONFIG_MAPPING"]["gemma"]}
    pi05_modeling.PaliGemmaForConditionalGenerationWithPiGemma = build_paligemma
    try:
        yield
    finally:
        for k, v in saved.items():
            setattr(pi05_modeling, k, v)


def tiny_pi05(model_cfg: dict):
    from lerobot.configs.types import FeatureType, PolicyFeature
    from lerobot.policies.pi05.configuration_pi05 import PI05Config

    feats = {
        "observation.images.exterior_image_1_left": PolicyFeature(FeatureType.VISUAL, (3, 32, 32)),
        "observation.state": PolicyFeature(FeatureType.STATE, (8,)),
    }
    config = PI05Config(
        chunk_size=model_cfg["chunk_size"], n_action_steps=model_cfg["n_action_steps"],
        max_action_dim=model_cfg["max_action_dim"], max_state_dim=model_cfg["max_state_dim"],
        dtype="float32", image_resolution=(32, 32), device="cpu", tokenizer_max_length=8,
        input_features=feats, output_features={"action": PolicyFeature(FeatureType.ACTION, (8,))},
    )  # fmt: skip
    with tiny_pi05_sizes():
        torch.manual_seed(0)
        return pi05_modeling.PI05Policy(config)


def test_recipe_keys():
    r = recipe()
    m = r["model"]
    assert m["name"] == "lerobot" and m["policy_type"] == "pi05"
    assert m["overrides"]["chunk_size"] == 16 and m["overrides"]["n_action_steps"] == 8
    assert m["action_space"] == "droid_joint_velocity"
    o = r["optim"]
    assert o["preset"] == "pi05" and o["lr"] == 2.5e-5
    want = {"promotion_steps": 0, "scale_factor": 2.0, "momentum": 0.95, "nesterov": False}
    assert {k: o["pion"][k] for k in want} == want
    sched = ScheduleConfig(**r["schedule"])
    f = lr_factor(sched, r["steps"])
    assert f(0) < 1e-2 and f(1000) == pytest.approx(1.0)  # warmup 1k to the peak 2.5e-5
    assert f(30000) == pytest.approx(0.1) and f(15500) == pytest.approx(0.55)  # cosine toward 2.5e-6 over 30k
    assert f(20000) * o["lr"] == pytest.approx(2.5e-5 * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 19 / 29))))


def test_pi05_recipe_routes_tiny_pi05_and_steps():
    r = recipe()
    policy = tiny_pi05(r["model"]["overrides"])
    names = dict(policy.named_parameters())
    assert any(".paligemma." in n for n in names) and any(".gemma_expert." in n for n in names)
    opt = build_optimizer(policy, {**r["optim"], "verbose": False, "pion": {**r["optim"]["pion"], "ns_dtype": "float32"},
                                   "muon": {**r["optim"]["muon"], "ns_dtype": "float32"}})  # fmt: skip
    routed = [r.name for r in opt.routes]
    assert sorted(routed) == sorted(names)  # every parameter routed, once
    kind = opt.optimizer_of
    q_vlm = next(n for n in names if "paligemma.model.language_model.layers.0.self_attn.q_proj.weight" in n)
    q_exp = next(n for n in names if "gemma_expert.model.layers.0.self_attn.q_proj.weight" in n)
    vit = next(n for n in names if "vision_tower" in n and n.endswith("fc1.weight"))
    emb = next(n for n in names if n.endswith("embed_tokens.weight"))
    assert kind(q_vlm) == "muon" and kind(vit) == "muon"
    assert kind(q_exp) == "pion" and kind("model.action_in_proj.weight") == "pion"
    assert kind("model.time_mlp_in.weight") == "pion"
    assert kind("model.action_out_proj.weight") == "adamw" and kind("model.action_out_proj.bias") == "adamw"
    assert kind(emb) == "adamw"
    for g in opt.children["pion"].param_groups:
        assert g["promotion_steps"] == 0 and g["scale_factor"] == 2.0 and g["momentum"] == 0.95
        assert g["nesterov"] is False and g["lr"] == 2.5e-5

    # one step on the flow-matching loss (random images / tokens / actions) changes the expert and the tower
    torch.manual_seed(1)
    b, model = 2, policy.model
    images = [torch.rand(b, 3, 32, 32) * 2 - 1]
    loss = model.forward(images, [torch.ones(b, dtype=torch.bool)], torch.randint(0, 100, (b, 8)),
                         torch.ones(b, 8, dtype=torch.bool), torch.randn(b, 16, 32), torch.randn(b, 16, 32),
                         torch.rand(b)).mean()  # fmt: skip
    before = {n: names[n].detach().clone() for n in (q_vlm, "model.action_out_proj.weight")}
    loss.backward()
    opt.step()
    assert torch.isfinite(loss)
    for n, w in before.items():  # Muon (VL tower) and AdamW (action_out_proj) moved the weights
        assert not torch.equal(w, names[n].detach()), n
    # Pion stepped the expert: its momentum holds the gradient (the update itself may be exactly zero at
    # k_p = 0 when no singular direction passes the filter, as in the official code; pion.md)
    buf = opt.state[names[q_exp]]["momentum_buffer"]
    assert buf.abs().sum() > 0 and torch.isfinite(buf).all()
