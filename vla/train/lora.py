"""LoRA on the backbone (the upstream VLA-Adapter recipe): adapters on every Linear of the vision tower,
projector and language model (not lm_head), backbone weights frozen, the ActionQuery tokens and the policy
head trained in full.

Adapters are injected in place with `peft.inject_adapter_in_model`, so parameter names keep their prefixes
(`language_model.layers.0.self_attn.q_proj.lora_A.default.weight`) and the optimizer's routing presets
route them like any other parameter. `merged_copy` folds the adapters into a plain copy of the model for
export in the checkpoint format.
"""

from __future__ import annotations

import copy
import re

import torch
from torch import nn

from vla.train.config import LoRAConfig

PEFT_MISSING = (
    "lora.enabled=true needs the `peft` package, which is not installed; install it with "
    "`.venv/bin/pip install peft==0.21.2` (or set lora.enabled=false)"
)


def _peft():
    try:
        import peft
    except ImportError as e:
        raise ImportError(PEFT_MISSING) from e
    return peft


def lora_targets(model: nn.Module, cfg: LoRAConfig) -> list[str]:
    """Qualified names of the backbone Linear layers that get adapters."""
    backbone, exclude = re.compile(cfg.backbone_pattern), re.compile(cfg.exclude_pattern)
    names = [
        name
        for name, module in model.named_modules()
        if isinstance(module, nn.Linear) and backbone.search(name + ".") and not exclude.search(name)
    ]
    if not names:
        raise ValueError(
            f"lora: no Linear layer matches lora.backbone_pattern={cfg.backbone_pattern!r}; the backbone must be "
            "named vision_backbone.* / projector.* / language_model.* (or adjust the pattern)"
        )
    return names


def apply_lora(model: nn.Module, cfg: LoRAConfig) -> list[str]:
    """Inject adapters, freeze the backbone except the adapters; returns the adapted layer names."""
    peft = _peft()
    targets = lora_targets(model, cfg)
    lora_cfg = peft.LoraConfig(
        r=cfg.r,
        lora_alpha=cfg.alpha if cfg.alpha is not None else 2 * cfg.r,
        lora_dropout=cfg.dropout,
        target_modules=targets,
        init_lora_weights="gaussian",
        bias="none",
    )
    trainable_before = {n for n, p in model.named_parameters() if p.requires_grad}
    peft.inject_adapter_in_model(lora_cfg, model)  # (it also freezes everything but the adapters)
    backbone = re.compile(cfg.backbone_pattern)
    for name, param in model.named_parameters():
        if "lora_" in name:
            param.requires_grad_(True)
        elif backbone.search(name):
            param.requires_grad_(False)
        else:  # head, ActionQuery, proprio projector: trained in full, as before
            param.requires_grad_(name in trainable_before)
    return targets


def has_lora(model: nn.Module) -> bool:
    return any("lora_" in n for n, _ in model.named_parameters())


@torch.no_grad()
def merged_copy(model: nn.Module) -> nn.Module:
    """A deep copy with every adapter folded into its base layer (plain nn.Linear again)."""
    peft = _peft()
    from peft.tuners.lora import LoraLayer

    clone = copy.deepcopy(model)
    layers = [(n, m) for n, m in clone.named_modules() if isinstance(m, LoraLayer)]
    for name, layer in layers:
        layer.merge()
        base = layer.get_base_layer()
        parent_name, _, child = name.rpartition(".")
        setattr(clone.get_submodule(parent_name) if parent_name else clone, child, base)
    for p in clone.parameters():
        p.requires_grad_(True)
    del peft
    return clone
