"""Official Prismatic / VLA-Adapter key layout -> VLMBackbone (timm towers, the reference's renames)."""

from __future__ import annotations

import pytest
import torch
from tiny_models import tiny_backbone

from vla.models.backbone import VLMBackbone
from vla.models.prismatic import load_prismatic_checkpoint

DINO_INV = {"norm1": "norm1", "norm2": "norm2", "attention.output.dense": "attn.proj", "mlp.fc1": "mlp.fc1",
            "mlp.fc2": "mlp.fc2"}  # fmt: skip
SIGLIP_INV = {"layer_norm1": "norm1", "layer_norm2": "norm2", "self_attn.out_proj": "attn.proj", "mlp.fc1": "mlp.fc1",
              "mlp.fc2": "mlp.fc2"}  # fmt: skip


def _to_prismatic(vlm: VLMBackbone) -> dict[str, torch.Tensor]:
    """Write a VLMBackbone in the Prismatic layout: timm towers (fused qkv), llm_backbone.llm, projector.projector.N."""
    out = {}
    dino = vlm.vision_backbone.dino.state_dict()
    p = "vision_backbone.dino_featurizer."
    out[p + "cls_token"] = dino["embeddings.cls_token"]
    if "embeddings.register_tokens" in dino:
        out[p + "reg_token"] = dino["embeddings.register_tokens"]
    out[p + "pos_embed"] = dino["embeddings.position_embeddings"][
        :, 1:
    ]  # the CLS row is zero in timm's layout
    out[p + "patch_embed.proj.weight"] = dino["embeddings.patch_embeddings.projection.weight"]
    out[p + "patch_embed.proj.bias"] = dino["embeddings.patch_embeddings.projection.bias"]
    n = len(vlm.vision_backbone.dino.encoder.layer)
    for i in range(n + 1):  # one more block than built: the checkpoint's last block must be dropped
        src = i if i < n else 0
        pre = f"encoder.layer.{src}."
        for t in ("weight", "bias"):
            out[f"{p}blocks.{i}.attn.qkv.{t}"] = torch.cat(
                [dino[f"{pre}attention.attention.{x}.{t}"] for x in ("query", "key", "value")]
            )
            for hf, timm in DINO_INV.items():
                out[f"{p}blocks.{i}.{timm}.{t}"] = dino[f"{pre}{hf}.{t}"]
        out[f"{p}blocks.{i}.ls1.gamma"] = dino[f"{pre}layer_scale1.lambda1"]
        out[f"{p}blocks.{i}.ls2.gamma"] = dino[f"{pre}layer_scale2.lambda1"]
    out[p + "norm.weight"] = torch.ones(3)  # final norm: not read
    sig = vlm.vision_backbone.siglip.state_dict()
    p = "vision_backbone.siglip_featurizer."
    out[p + "pos_embed"] = sig["vision_model.embeddings.position_embedding.weight"][None]
    for t in ("weight", "bias"):
        out[f"{p}patch_embed.proj.{t}"] = sig[f"vision_model.embeddings.patch_embedding.{t}"]
    for i in range(len(vlm.vision_backbone.siglip.vision_model.encoder.layers)):
        pre = f"vision_model.encoder.layers.{i}."
        for t in ("weight", "bias"):
            out[f"{p}blocks.{i}.attn.qkv.{t}"] = torch.cat(
                [sig[f"{pre}self_attn.{x}_proj.{t}"] for x in "qkv"]
            )
            for hf, timm in SIGLIP_INV.items():
                out[f"{p}blocks.{i}.{timm}.{t}"] = sig[f"{pre}{hf}.{t}"]
    for j, fc in ((0, "fc1"), (2, "fc2"), (4, "fc3")):
        for t in ("weight", "bias"):
            out[f"projector.projector.{j}.{t}"] = getattr(vlm.projector, fc).state_dict()[t]
    for k, v in vlm.language_model.state_dict().items():
        out[f"llm_backbone.llm.model.{k}"] = v
    out["llm_backbone.llm.lm_head.weight"] = vlm.language_model.embed_tokens.weight
    return {k: v.clone() for k, v in out.items()}


@pytest.mark.parametrize("registers", [0, 2])
def test_prismatic_checkpoint_loads_with_identical_outputs(tmp_path, registers):
    torch.manual_seed(0)
    cfg = tiny_backbone(dino_registers=registers)
    src = VLMBackbone(cfg).eval()
    with torch.no_grad():  # a timm reg4 DINOv2 adds no position embedding to its CLS token
        src.vision_backbone.dino.embeddings.position_embeddings[:, 0] = 0
    sd = _to_prismatic(src)
    nested = {"model": {}}
    for k, v in sd.items():
        part, rest = k.split(".", 1)
        nested["model"].setdefault(part, {})[rest] = v
    torch.save(nested, tmp_path / "latest-checkpoint.pt")
    torch.manual_seed(1)
    dst = VLMBackbone(cfg).eval()
    load_prismatic_checkpoint(dst, tmp_path / "latest-checkpoint.pt")
    for k, v in src.state_dict().items():
        if not k.endswith("mask_token"):
            assert torch.equal(v, dst.state_dict()[k]), k
    px = torch.randn(1, 2, 6, cfg.image_size, cfg.image_size)
    torch.testing.assert_close(src.embed_images(px), dst.embed_images(px))


def test_incomplete_checkpoint_is_refused(tmp_path):
    cfg = tiny_backbone(dino_registers=0)
    sd = _to_prismatic(VLMBackbone(cfg))
    from safetensors.torch import save_file

    save_file(
        {k: v.contiguous() for k, v in sd.items() if not k.startswith("projector.")},
        tmp_path / "m.safetensors",
    )
    with pytest.raises(ValueError, match="projector.*missing"):
        load_prismatic_checkpoint(VLMBackbone(cfg), tmp_path / "m.safetensors")
