"""Load the official Prismatic / VLA-Adapter VLM checkpoint into VLMBackbone (models.md §1.1).

    load_prismatic_checkpoint(vlm, path)   # path: a Prismatic .pt, a .safetensors file, or an HF
                                           # OpenVLA-style directory (model*.safetensors)

Key layout handled:
    llm_backbone.llm.*                  -> language_model.*           (the reference's rename)
    language_model.model.*              -> language_model.*           (HF OpenVLA layout; lm_head dropped: tied)
    projector.projector.{0,2,4}.*       -> projector.fc{1,2,3}.*      (the reference's rename)
    vision_backbone.{featurizer,dino_featurizer}.*          timm DINOv2 -> HF Dinov2[WithRegisters]
    vision_backbone.{fused_featurizer,siglip_featurizer}.*  timm SigLIP -> HF SiglipVisionModel
timm -> HF: fused qkv split into query/key/value, LayerScale gamma -> lambda1, pos_embed reshaped (DINO's
timm pos_embed covers patches only (no_embed_class) -> a zero CLS row is prepended, which is exactly
equivalent). Blocks past `feature_layer` and the final norms / pooling heads are dropped (never read).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import torch
from safetensors.torch import load_file

from vla.models.backbone import VLMBackbone, _load_checked

_DINO = ("vision_backbone.featurizer.", "vision_backbone.dino_featurizer.")
_SIGLIP = ("vision_backbone.fused_featurizer.", "vision_backbone.siglip_featurizer.")
_BLOCK = re.compile(r"blocks\.(\d+)\.(.+)")
_DINO_BLOCK = {"norm1": "norm1", "norm2": "norm2", "attn.proj": "attention.output.dense", "mlp.fc1": "mlp.fc1",
               "mlp.fc2": "mlp.fc2", "ls1.gamma": "layer_scale1.lambda1", "ls2.gamma": "layer_scale2.lambda1"}  # fmt: skip
_SIGLIP_BLOCK = {"norm1": "layer_norm1", "norm2": "layer_norm2", "attn.proj": "self_attn.out_proj",
                 "mlp.fc1": "mlp.fc1", "mlp.fc2": "mlp.fc2"}  # fmt: skip


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Flat state dict of a Prismatic .pt ({"model": {part: state_dict}}), a .safetensors file or a directory."""
    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob("*.safetensors"))
        if not files:
            raise FileNotFoundError(f"{path} holds no *.safetensors files")
        return {k: v for f in files for k, v in load_file(str(f)).items()}
    if path.suffix == ".safetensors":
        return load_file(str(path))
    ckpt = torch.load(str(path), map_location="cpu", weights_only=True)
    model = ckpt.get("model", ckpt)
    flat = {}
    for part, value in model.items():
        if isinstance(value, dict):
            flat.update({f"{part}.{k}": v for k, v in value.items()})
        else:
            flat[part] = value
    return flat


def _timm_block(rest: str, table: dict[str, str], qkv_names: tuple[str, str, str], prefix: str, value, out):
    m = _BLOCK.fullmatch(rest)
    idx, sub = m.group(1), m.group(2)
    for tail in ("weight", "bias", "gamma"):
        if sub.endswith("." + tail) or sub == tail:
            module = sub[: -len(tail) - 1]
            break
    else:
        raise KeyError(f"unexpected timm block key {rest!r}")
    if module == "attn.qkv":
        for name, part in zip(qkv_names, value.chunk(3, dim=0)):
            out[f"{prefix}{idx}.{name}.{tail}"] = part.clone()
    elif f"{module}.{tail}" in table:  # LayerScale: ls1.gamma -> layer_scale1.lambda1
        out[f"{prefix}{idx}.{table[f'{module}.{tail}']}"] = value
    elif module in table:
        out[f"{prefix}{idx}.{table[module]}.{tail}"] = value
    else:
        raise KeyError(f"unexpected timm block key {rest!r}")


def _convert_dino(rest: str, value: torch.Tensor, out: dict) -> None:
    if rest.startswith("blocks."):
        names = ("attention.attention.query", "attention.attention.key", "attention.attention.value")
        _timm_block(rest, _DINO_BLOCK, names, "encoder.layer.", value, out)
    elif rest == "cls_token":
        out["embeddings.cls_token"] = value
    elif rest == "reg_token":
        out["embeddings.register_tokens"] = value
    elif (
        rest == "pos_embed"
    ):  # reg4 models (no_embed_class): patches only -> zero CLS row; else already has it
        n = value.shape[1]
        has_cls = math.isqrt(n) ** 2 != n
        out["embeddings.position_embeddings"] = (
            value if has_cls else torch.cat([value.new_zeros(1, 1, value.shape[-1]), value], dim=1)
        )
    elif rest.startswith("patch_embed.proj."):
        out["embeddings.patch_embeddings.projection." + rest.rsplit(".", 1)[1]] = value


def _convert_siglip(rest: str, value: torch.Tensor, out: dict) -> None:
    if rest.startswith("blocks."):
        names = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj")
        _timm_block(rest, _SIGLIP_BLOCK, names, "vision_model.encoder.layers.", value, out)
    elif rest == "pos_embed":
        out["vision_model.embeddings.position_embedding.weight"] = value.reshape(-1, value.shape[-1])
    elif rest.startswith("patch_embed.proj."):
        out["vision_model.embeddings.patch_embedding." + rest.rsplit(".", 1)[1]] = value


def convert_state_dict(sd: dict[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
    """Prismatic / OpenVLA keys -> {"dino": ..., "siglip": ..., "projector": ..., "language_model": ...}."""
    parts: dict[str, dict[str, torch.Tensor]] = {
        "dino": {},
        "siglip": {},
        "projector": {},
        "language_model": {},
    }
    for key, value in sd.items():
        if key.startswith(_DINO):
            _convert_dino(key.split(".", 2)[2], value, parts["dino"])
        elif key.startswith(_SIGLIP):
            _convert_siglip(key.split(".", 2)[2], value, parts["siglip"])
        elif m := re.fullmatch(r"projector\.(?:projector\.)?(\d)\.(weight|bias)", key):
            parts["projector"][f"fc{int(m.group(1)) // 2 + 1}.{m.group(2)}"] = value
        elif m := re.fullmatch(r"projector\.(fc[123]\.(?:weight|bias))", key):
            parts["projector"][m.group(1)] = value
        elif key.startswith(("llm_backbone.llm.model.", "language_model.model.")):
            parts["language_model"][key.split(".model.", 1)[1]] = value
    return parts


def _only_built_blocks(sd: dict[str, torch.Tensor], module: torch.nn.Module) -> dict[str, torch.Tensor]:
    own = module.state_dict()
    return {k: v for k, v in sd.items() if k in own or not re.search(r"\.(layer|layers)\.\d+\.", k)}


def load_prismatic_checkpoint(vlm: VLMBackbone, path: str | Path) -> None:
    """Load every VLM part from `path`; refuses a checkpoint that does not cover all of them."""
    parts = convert_state_dict(read_state_dict(path))
    tower = vlm.vision_backbone
    targets = {
        "dino": tower.dino,
        "siglip": tower.siglip,
        "projector": vlm.projector,
        "language_model": vlm.language_model,
    }
    for name, module in targets.items():
        _load_checked(module, _only_built_blocks(parts[name], module), f"{path} ({name})")
