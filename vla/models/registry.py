"""Model types by name, and building a model, tokenizer and processor from a `configs/model/*.yaml` dict.

    MODEL_TYPES["vla_adapter"] = ("vla.models.vla_adapter.config:VLAAdapterConfig",
                                  "vla.models.vla_adapter.model:VLAAdapter")
    ConfigCls, ModelCls = model_classes("vla_adapter")        # imported lazily
    config = model_config_from_dict(cfg)                      # cfg = the model YAML (name + fields)
    model = build_model(cfg, pretrained=True)                 # + weights from backbone.*_path
    tokenizer = build_tokenizer(config)                       # backbone.llm_path's, else byte-level
    processor = build_processor(config, cfg.get("processor"), stats, tokenizer)

Adding a policy family = one line in MODEL_TYPES. Its config class needs: `model_type` (class attribute),
`backbone` (BackboneConfig), `num_images`, `chunk_len`, `n_action_steps`, `action_dim`, `proprio_dim`,
`processor_fields()` (the ProcessorConfig values it dictates), `to_dict()` / `from_dict()`; its model class
takes the config and implements `compute_loss(inputs)` / `sample_actions(inputs)` on a `VLMBackbone`.

Model YAML layout: `name: <model_type>`, the config fields at top level (`backbone:` a mapping of
BackboneConfig fields, `backbone.preset: real | cpu` picks the base sizes), and `processor:` (ProcessorConfig
fields other than those the model dictates).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from vla.models.backbone import BackboneConfig, load_pretrained_weights
from vla.models.processor import PolicyProcessor, ProcessorConfig
from vla.models.tokenizer import build_byte_tokenizer, load_tokenizer

MODEL_TYPES: dict[str, tuple[str, str]] = {
    "vla_adapter": (
        "vla.models.vla_adapter.config:VLAAdapterConfig",
        "vla.models.vla_adapter.model:VLAAdapter",
    ),
    "flow_matching": (
        "vla.models.flow_matching.config:FlowMatchingConfig",
        "vla.models.flow_matching.model:FlowMatchingPolicy",
    ),
}
_NON_MODEL_KEYS = ("name", "model_type", "processor")


def _import(path: str) -> Any:
    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)


def model_classes(model_type: str) -> tuple[type, type]:
    """(ConfigClass, ModelClass) of a registered model type."""
    if model_type not in MODEL_TYPES:
        raise ValueError(
            f"unknown model type {model_type!r}; registered: {sorted(MODEL_TYPES)} (vla/models/registry.py)"
        )
    config_path, model_path = MODEL_TYPES[model_type]
    return _import(config_path), _import(model_path)


def _plain(cfg: Any) -> dict[str, Any]:
    if hasattr(cfg, "_metadata"):  # OmegaConf DictConfig
        from omegaconf import OmegaConf

        cfg = OmegaConf.to_container(cfg, resolve=True)
    if not isinstance(cfg, Mapping):
        raise TypeError(f"model config must be a mapping, got {type(cfg).__name__}")
    return dict(cfg)


def backbone_from_dict(d: Mapping[str, Any] | None) -> BackboneConfig:
    """`preset: real | cpu` (default real) plus field overrides."""
    d = dict(d or {})
    preset = d.pop("preset", "real")
    if preset not in ("real", "cpu"):
        raise ValueError(f"backbone.preset must be 'real' or 'cpu', got {preset!r}")
    return getattr(BackboneConfig, preset)(**d)


def model_config_from_dict(cfg: Any) -> Any:
    """The validated config dataclass of a model YAML (`name:` selects the type)."""
    d = _plain(cfg)
    model_type = d.get("name") or d.get("model_type")
    config_cls, _ = model_classes(model_type)
    fields = {k: v for k, v in d.items() if k not in _NON_MODEL_KEYS}
    if isinstance(fields.get("backbone"), Mapping) or fields.get("backbone") is None:
        fields["backbone"] = backbone_from_dict(fields.get("backbone"))
    return config_cls.from_dict(fields)


def build_model(cfg: Any, pretrained: bool = True):
    """A model from a YAML dict or a config dataclass; `pretrained` loads the backbone.*_path weights."""
    config = (
        cfg if hasattr(cfg, "model_type") and not isinstance(cfg, Mapping) else model_config_from_dict(cfg)
    )
    _, model_cls = model_classes(config.model_type)
    model = model_cls(config)
    if pretrained:
        load_pretrained_weights(model, config.backbone)
    return model


def build_tokenizer(config: Any):
    """The backbone's tokenizer (backbone.llm_path) at real size, else the offline byte-level one."""
    tok = load_tokenizer(config.backbone.llm_path) if config.backbone.llm_path else build_byte_tokenizer()
    if len(tok) > config.backbone.vocab_size:
        raise ValueError(
            f"tokenizer has {len(tok)} tokens but backbone.vocab_size is {config.backbone.vocab_size}; raise vocab_size"
        )
    return tok


def processor_config(config: Any, overrides: Mapping[str, Any] | None = None) -> ProcessorConfig:
    """ProcessorConfig from YAML overrides plus the fields the model dictates (conflicts raise)."""
    overrides = dict(_plain(overrides) if overrides is not None else {})
    dictated = config.processor_fields()
    for key, value in dictated.items():
        if key in overrides and overrides[key] != value:
            raise ValueError(
                f"processor.{key}={overrides[key]!r} contradicts the model ({value!r}); remove it"
            )
    if "image_keys" in overrides and len(overrides["image_keys"]) != config.num_images:
        raise ValueError(
            f"processor.image_keys has {len(overrides['image_keys'])} cameras, model num_images={config.num_images}"
        )
    pc = ProcessorConfig.from_dict({**overrides, **dictated})
    if len(pc.image_keys) != config.num_images:
        raise ValueError(
            f"processor has {len(pc.image_keys)} image_keys but the model takes num_images={config.num_images}"
        )
    return pc


def build_processor(
    config: Any, overrides: Mapping[str, Any] | None, stats: Mapping[str, Any], tokenizer=None
):
    return PolicyProcessor(processor_config(config, overrides), tokenizer or build_tokenizer(config), stats)
