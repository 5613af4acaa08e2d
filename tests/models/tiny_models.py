"""Tiny models, processors and batches for the model tests (seconds each on 2 cores)."""

from __future__ import annotations

import numpy as np

from vla.models.backbone import BackboneConfig
from vla.models.processor import PolicyProcessor, ProcessorConfig, default_stats
from vla.models.registry import processor_config
from vla.models.tokenizer import build_byte_tokenizer
from vla.models.vla_adapter import VLAAdapter, VLAAdapterConfig

TASKS = ["put the bowl on the plate", "open the top drawer of the cabinet"]


def tiny_backbone(**overrides) -> BackboneConfig:
    return BackboneConfig.cpu(
        **{
            "image_size": 32, "patch_size": 16, "dino_hidden": 32, "dino_layers": 3, "dino_heads": 2,
            "siglip_hidden": 32, "siglip_layers": 3, "siglip_heads": 2, "siglip_mlp": 64, "llm_hidden": 32,
            "llm_layers": 2, "llm_heads": 4, "llm_kv_heads": 2, "llm_mlp": 64, "attn_implementation": "eager",
            **overrides,
        }
    )  # fmt: skip


def tiny_config(**overrides) -> VLAAdapterConfig:
    return VLAAdapterConfig(backbone=tiny_backbone(), num_action_queries=4, head_heads=2, **overrides)


def tiny_processor(config, **overrides) -> PolicyProcessor:
    pc = processor_config(config, {"input_image_size": 48, "prompt_template": "do: {task}", **overrides})
    return PolicyProcessor(pc, build_byte_tokenizer(), default_stats(config.proprio_dim, config.action_dim))


def observation(batch: int = 2, size: int = 48, seed: int = 0, with_action: bool = False) -> dict:
    rng = np.random.default_rng(seed)
    obs = {
        "observation.images.image": rng.integers(0, 256, (batch, size, size, 3), dtype=np.uint8),
        "observation.images.image2": rng.integers(0, 256, (batch, size, size, 3), dtype=np.uint8),
        "observation.state": rng.uniform(-1, 1, (batch, 8)).astype(np.float32),
        "task": [TASKS[i % len(TASKS)] for i in range(batch)],
    }
    if with_action:
        action = rng.uniform(-1, 1, (batch, 8, 7)).astype(np.float32)
        action[..., 6] = np.sign(action[..., 6])
        obs["action"] = action
        obs["action_is_pad"] = np.zeros((batch, 8), dtype=bool)
    return obs


__all__ = [
    "ProcessorConfig",
    "VLAAdapter",
    "VLAAdapterConfig",
    "observation",
    "tiny_backbone",
    "tiny_config",
    "tiny_processor",
]
