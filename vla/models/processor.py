"""The one processor: a protocol batch -> model inputs, for training and inference alike.

    processor = PolicyProcessor(ProcessorConfig(...), tokenizer, stats)
    inputs = processor(batch, train=True, generator=g)   # dataset batch (with "action", "action_is_pad")
    inputs = processor(batch, train=False)               # observation batch from an env / client
    chunk  = processor.unnormalize_actions(model.sample_actions(inputs))   # (B, T, A), libero_raw gripper

Model inputs (torch, on CPU; the caller moves them):
    pixel_values    float32 (B, n_images, 6, S, S): 3 ImageNet-normalised channels (DINOv2), then 3
                    (x - 0.5) / 0.5 channels (SigLIP); S = cfg.image_size
    input_ids       int64 (B, L) prompt tokens, then `num_queries` QUERY_TOKEN placeholders; right-padded
    attention_mask  int64 (B, L) 1 for real tokens
    proprio         float32 (B, state_dim) q01/q99-normalised and clipped to [-1, 1]
    action          float32 (B, T, A) normalised the same way except `unnormalized_dims` (the gripper),
                    which is converted to `gripper_target` (VLA-Adapter: 1 open / 0 close)   [if in batch]
    action_is_pad   bool (B, T)                                                              [if in batch]

Images (models.md §1.4, §1.6): uint8 (B, H, W, 3), already rotated like LIBERO datasets -> bicubic resize
to S -> train (and `augment`): random square crop of area `crop_scale` at a random place, resized back
to S, then additive brightness ±0.2, contrast / saturation ×[0.8, 1.2], hue ±0.05 (dlimp's order, each
clipped to [0, 1]; batched in vla/models/augment.py); otherwise the centred crop of the same area, resized
back. With augmentation off, training and inference run the same functions and are bit-identical.

Normalisation (BOUNDS_Q99): y = clip(2 (x - q01) / (q99 - q01 + 1e-8) - 1, -1, 1); dims with
q01 == q99 give 0. Inverse: x = (y + 1) / 2 · (q99 - q01 + 1e-8) + q01.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torchvision.transforms.v2.functional as TF

from vla.config import check_keys
from vla.models.augment import Jitter, augment_batch
from vla.models.tokenizer import query_token_id
from vla.protocol import IMAGE_PREFIX, STATE_KEY, TASK_KEY

ACTION_KEY = "action"
PAD_KEY = "action_is_pad"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
VLA_ADAPTER_PROMPT = (
    "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
    "<|im_start|>user\nWhat action should the robot take to {task}?<|im_end|>\n<|im_start|>assistant\n"
)
GRIPPER_TARGETS = ("open1_close0", "libero_raw")


@dataclass
class ProcessorConfig:
    """Everything between a protocol batch and the model; saved in the checkpoint's config.json."""

    image_keys: tuple[str, ...] = (IMAGE_PREFIX + "image", IMAGE_PREFIX + "image2")  # cameras, in order
    input_image_size: int = 256  # raw H = W accepted (PolicySpec.image_shapes)
    image_size: int = 224  # model input side (must equal the backbone's image_size)
    crop_scale: float = 0.9  # area of the train random crop and of the eval centre crop
    augment: bool = True  # train-time crop + colour jitter; False -> train uses the eval transform
    brightness: float = 0.2  # additive delta in [-b, b] (tf.image.random_brightness)
    contrast: tuple[float, float] = (0.8, 1.2)  # factor range
    saturation: tuple[float, float] = (0.8, 1.2)  # factor range
    hue: float = 0.05  # hue shift in [-h, h] (fraction of the colour wheel)
    prompt_template: str = VLA_ADAPTER_PROMPT  # must contain "{task}"
    lowercase_task: bool = True  # reference: task.lower()
    num_queries: int = 64  # placeholder tokens appended to the prompt (the model's query count)
    state_dim: int = 8
    action_dim: int = 7
    chunk_len: int = 8
    unnormalized_dims: tuple[int, ...] = (6,)  # action dims left unnormalised (the gripper)
    gripper_dim: int | None = 6  # action dim holding the gripper; None -> no gripper conversion
    gripper_target: str = "open1_close0"  # training target convention; data and outputs are libero_raw
    binarize_gripper: bool = True  # outputs: gripper -> exactly -1 (open) / +1 (close)

    def __post_init__(self) -> None:
        self.image_keys = tuple(self.image_keys)
        self.contrast, self.saturation = tuple(self.contrast), tuple(self.saturation)
        self.unnormalized_dims = tuple(self.unnormalized_dims)
        if not self.image_keys or not all(k.startswith(IMAGE_PREFIX) for k in self.image_keys):
            raise ValueError(f"processor.image_keys must be non-empty and start with {IMAGE_PREFIX!r}")
        if not 0.0 < self.crop_scale <= 1.0:
            raise ValueError(f"processor.crop_scale must be in (0, 1], got {self.crop_scale}")
        if "{task}" not in self.prompt_template:
            raise ValueError("processor.prompt_template must contain '{task}'")
        if min(self.num_queries, self.state_dim, self.action_dim, self.chunk_len, self.image_size) <= 0:
            raise ValueError(
                "processor num_queries, state_dim, action_dim, chunk_len, image_size must be positive"
            )
        if any(not 0 <= d < self.action_dim for d in self.unnormalized_dims):
            raise ValueError(f"processor.unnormalized_dims {self.unnormalized_dims} outside action_dim")
        if self.gripper_dim is not None and not 0 <= self.gripper_dim < self.action_dim:
            raise ValueError(f"processor.gripper_dim {self.gripper_dim} outside action_dim {self.action_dim}")
        if self.gripper_target not in GRIPPER_TARGETS:
            raise ValueError(
                f"processor.gripper_target must be one of {GRIPPER_TARGETS}, got {self.gripper_target!r}"
            )

    @property
    def image_shapes(self) -> dict[str, tuple[int, int, int]]:
        return {k: (self.input_image_size, self.input_image_size, 3) for k in self.image_keys}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ProcessorConfig:
        check_keys(cls, d, "processor config")
        return cls(**d)


def _bounds(stats: Mapping[str, Any], key: str, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    if key not in stats or not {"q01", "q99"} <= set(stats[key]):
        raise ValueError(
            f"normalisation stats need {key!r} with 'q01' and 'q99' (vla.data.stats.compute_stats)"
        )
    q01 = torch.as_tensor(stats[key]["q01"], dtype=torch.float32)
    q99 = torch.as_tensor(stats[key]["q99"], dtype=torch.float32)
    if q01.shape != (dim,) or q99.shape != (dim,):
        raise ValueError(
            f"normalisation stats for {key!r} have dimension {tuple(q01.shape)}/{tuple(q99.shape)}, the model "
            f"expects {dim}; recompute the stats for this dataset or fix the model's dims"
        )
    return q01, q99


class PolicyProcessor:
    """Protocol batch -> model inputs (see module docstring); `unnormalize_actions` inverts the targets."""

    def __init__(self, cfg: ProcessorConfig, tokenizer, stats: Mapping[str, Any]) -> None:
        self.cfg, self.tokenizer, self.stats = cfg, tokenizer, stats
        self.state_q01, self.state_q99 = _bounds(stats, STATE_KEY, cfg.state_dim)
        self.action_q01, self.action_q99 = _bounds(stats, ACTION_KEY, cfg.action_dim)
        self.action_mask = torch.ones(cfg.action_dim, dtype=torch.bool)
        self.action_mask[list(cfg.unnormalized_dims)] = False
        self.query_id = query_token_id(tokenizer)
        self.pad_id = tokenizer.pad_token_id
        self._prompt_ids: dict[str, list[int]] = {}
        mean, std = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
        self._mean = torch.cat([mean, torch.full((3,), 0.5)]).view(6, 1, 1)
        self._std = torch.cat([std, torch.full((3,), 0.5)]).view(6, 1, 1)
        self.jitter = Jitter(cfg.brightness, cfg.contrast, cfg.saturation, cfg.hue)

    # ------------------------------------------------------------------ batch -> inputs
    def __call__(
        self, batch: Mapping[str, Any], train: bool = False, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        cfg = self.cfg
        tasks = list(batch[TASK_KEY])
        augment = train and cfg.augment
        images = [self.process_images(batch[k], augment, generator) for k in cfg.image_keys]
        out = {"pixel_values": torch.stack(images, dim=1), **self.tokenize(tasks)}
        state = torch.as_tensor(
            np.asarray(batch[STATE_KEY]) if not torch.is_tensor(batch[STATE_KEY]) else batch[STATE_KEY]
        )
        out["proprio"] = normalize(state.float(), self.state_q01, self.state_q99)
        if ACTION_KEY in batch:
            out[ACTION_KEY] = self.normalize_actions(torch.as_tensor(batch[ACTION_KEY]).float())
            pad = batch.get(PAD_KEY)
            shape = out[ACTION_KEY].shape[:2]
            out[PAD_KEY] = (
                torch.zeros(shape, dtype=torch.bool) if pad is None else torch.as_tensor(pad).bool()
            )
        return out

    def process_images(
        self, images: Any, augment: bool, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """uint8 (B, H, W, 3) -> float (B, 6, S, S) in the fused DINO+SigLIP normalisation."""
        x = torch.as_tensor(images)
        if x.ndim != 4 or x.shape[-1] != 3 or x.dtype != torch.uint8:
            raise ValueError(f"images must be uint8 (B, H, W, 3), got {x.dtype} {tuple(x.shape)}")
        x = x.permute(0, 3, 1, 2).float().div(255.0)
        s = self.cfg.image_size
        if x.shape[-2:] != (s, s):
            x = TF.resize(x, [s, s], interpolation=TF.InterpolationMode.BICUBIC, antialias=True).clamp(0, 1)
        side = max(1, int(round(s * math.sqrt(self.cfg.crop_scale))))
        if augment:
            x = augment_batch(x, side, self.jitter, generator)
        else:
            off = (s - side) // 2
            x = _centre_crop_resize(x, off, side, s)
        x = torch.cat([x, x], dim=1)  # DINO channels, SigLIP channels
        return (x - self._mean) / self._std

    def tokenize(self, tasks: list[str]) -> dict[str, torch.Tensor]:
        """Prompt tokens + `num_queries` placeholders per task, right-padded."""
        rows = []
        for task in tasks:
            if task not in self._prompt_ids:
                text = task.lower() if self.cfg.lowercase_task else task
                prompt = self.cfg.prompt_template.format(task=text.strip())
                ids = self.tokenizer(prompt, add_special_tokens=False)["input_ids"]
                if self.query_id in ids:
                    raise ValueError(f"task {task!r} contains the reserved query placeholder token")
                self._prompt_ids[task] = ids + [self.query_id] * self.cfg.num_queries
            rows.append(self._prompt_ids[task])
        length = max(len(r) for r in rows)
        ids = torch.full((len(rows), length), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), length), dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = torch.tensor(r)
            mask[i, : len(r)] = 1
        return {"input_ids": ids, "attention_mask": mask}

    # ------------------------------------------------------------------ actions
    def normalize_actions(self, actions: torch.Tensor) -> torch.Tensor:
        """(B, T, A) dataset actions (libero_raw gripper) -> training targets."""
        self._check_action_dim(actions)
        y = torch.where(self.action_mask, normalize(actions, self.action_q01, self.action_q99), actions)
        g = self.cfg.gripper_dim
        if g is not None and self.cfg.gripper_target == "open1_close0":
            y = y.clone()
            y[..., g] = 1.0 - (actions[..., g].clamp(-1, 1) + 1.0) / 2.0  # closedness c; open1_close0 = 1 - c
        return y

    def unnormalize_actions(self, normalised: torch.Tensor) -> torch.Tensor:
        """Inverse of `normalize_actions`: model outputs -> (B, T, A) actions, gripper -1 open / +1 close."""
        self._check_action_dim(normalised)
        y = normalised.float().cpu()
        span = self.action_q99 - self.action_q01 + 1e-8
        x = torch.where(self.action_mask, (y + 1.0) / 2.0 * span + self.action_q01, y)
        g = self.cfg.gripper_dim
        if g is not None:
            raw = x[..., g]
            if self.cfg.gripper_target == "open1_close0":
                raw = 2.0 * (1.0 - raw) - 1.0
            x = x.clone()
            x[..., g] = torch.where(raw > 0, 1.0, -1.0) if self.cfg.binarize_gripper else raw.clamp(-1, 1)
        return x

    def _check_action_dim(self, actions: torch.Tensor) -> None:
        if actions.ndim != 3 or actions.shape[-1] != self.cfg.action_dim:
            raise ValueError(f"actions must be (B, T, {self.cfg.action_dim}), got {tuple(actions.shape)}")


def _centre_crop_resize(x: torch.Tensor, off: int, side: int, s: int) -> torch.Tensor:
    if side == s:
        return x
    x = x[..., off : off + side, off : off + side]
    return TF.resize(x, [s, s], interpolation=TF.InterpolationMode.BILINEAR, antialias=True).clamp(0, 1)


def normalize(x: torch.Tensor, q01: torch.Tensor, q99: torch.Tensor) -> torch.Tensor:
    """BOUNDS_Q99 normalisation to [-1, 1]; constant dims (q01 == q99) map to 0."""
    if x.shape[-1] != q01.shape[0]:
        raise ValueError(f"cannot normalise dimension {x.shape[-1]} with stats of dimension {q01.shape[0]}")
    y = (2.0 * (x - q01) / (q99 - q01 + 1e-8) - 1.0).clamp(-1.0, 1.0)
    return torch.where(q99 == q01, torch.zeros_like(y), y)


def default_stats(state_dim: int = 8, action_dim: int = 7) -> dict[str, dict[str, list[float]]]:
    """Identity-like stats ([-1, 1] bounds) for randomly initialised checkpoints and tests."""

    def one(d: int) -> dict[str, list[float]]:
        return {"q01": [-1.0] * d, "q99": [1.0] * d, "mean": [0.0] * d, "std": [1.0] * d,
                "min": [-1.0] * d, "max": [1.0] * d}  # fmt: skip

    return {STATE_KEY: one(state_dim), ACTION_KEY: one(action_dim)}


__all__ = ["PolicyProcessor", "ProcessorConfig", "VLA_ADAPTER_PROMPT", "default_stats", "normalize"]
