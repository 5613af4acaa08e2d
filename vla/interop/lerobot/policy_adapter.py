"""A lerobot policy (ACT, SmolVLA, π0.5, ...) inside pion-train: build it, feed it our batches, checkpoint it.

    policy, processor = build_policy(LerobotModelConfig(policy_type="act"), dataset, stats, device="cpu")
    loss, metrics = policy(processor(batch))            # the trainer's contract: module(inputs) -> (loss, metrics)
    save_checkpoint(dir, policy, processor)             # the trainer's export_fn
    policy, processor = load_checkpoint(dir, device="cpu")

The model the trainer sees is the lerobot policy itself, so parameter names (routing) and the checkpoint's
`model.safetensors` are lerobot's. The processor turns a batch of `vla.data` (uint8 (B, H, W, 3) cameras,
`observation.state`, `action` (B, T, A), `action_is_pad`, `task`) into lerobot's format (float (B, 3, H, W) in
[0, 1]) and runs lerobot's own pre-processor of the policy type (normalisation with our dataset stats; cameras with
ImageNet stats where the policy normalises images by mean/std, like lerobot-train's default; tokenisation).

Checkpoint directory = lerobot's `save_pretrained` (config.json, model.safetensors) + its processor files
(policy_preprocessor.json, policy_postprocessor.json and their stats) + ours: `stats.json` (vla.data stats),
`tokenizer/` (when model.tokenizer_path is set) and `pion_lerobot.json` (policy type, action space, cameras,
dims; written last, so its presence marks a complete export). `lerobot-eval --policy.path=<dir>` loads it as is.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import types
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vla.interop.lerobot.policy_config import LerobotConfigError, LerobotModelConfig
from vla.protocol import IMAGE_PREFIX, STATE_KEY, TASK_KEY

META_FILE, STATS_FILE, TOKENIZER_DIR = "pion_lerobot.json", "stats.json", "tokenizer"
PREPROCESSOR, POSTPROCESSOR = "policy_preprocessor.json", "policy_postprocessor.json"
META_FORMAT = 1
ACTION = "action"
PAD = "action_is_pad"


def to_lerobot_batch(batch: Mapping[str, Any], image_keys: list[str], rename_map: Mapping[str, str]) -> dict:
    """Our batch (training or protocol) -> lerobot's: float (B, 3, H, W) images in [0, 1], renamed keys."""
    out: dict[str, Any] = {}
    for key in image_keys:
        img = torch.as_tensor(
            np.asarray(batch[key]) if not isinstance(batch[key], torch.Tensor) else batch[key]
        )
        out[rename_map.get(key, key)] = img.permute(0, 3, 1, 2).float().div_(255.0)
    out[rename_map.get(STATE_KEY, STATE_KEY)] = torch.as_tensor(
        np.asarray(batch[STATE_KEY]), dtype=torch.float32
    )
    out[TASK_KEY] = list(batch[TASK_KEY])
    if batch.get(ACTION) is not None:
        out[ACTION] = torch.as_tensor(batch[ACTION], dtype=torch.float32)
        if batch.get(PAD) is not None:
            out[PAD] = torch.as_tensor(batch[PAD], dtype=torch.bool)
    return out


class LerobotBatchProcessor:
    """The trainer's processor: `processor(batch, train=True, generator=g) -> inputs` of the lerobot policy."""

    def __init__(
        self, preprocessor, postprocessor, meta: dict, stats: dict, tokenizer_path: str | None = None
    ):
        self.preprocessor, self.postprocessor = preprocessor, postprocessor
        self.meta, self.stats, self.tokenizer_path = meta, stats, tokenizer_path

    @property
    def image_keys(self) -> list[str]:
        return list(self.meta["image_shapes"])

    def __call__(self, batch: Mapping[str, Any], train: bool = True, generator=None) -> dict[str, Any]:
        # no augmentation (lerobot-train's default); `train` and `generator` are part of the trainer's contract
        return self.preprocessor(to_lerobot_batch(batch, self.image_keys, self.meta["rename_map"]))


def compute_loss(policy, inputs: Mapping[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
    """The trainer's model contract on a lerobot policy: its `forward` loss and the scalar entries of its
    loss dict (π0.5 also reports a per-dimension list, which the trainer's metrics cannot log)."""
    loss, info = policy.forward(dict(inputs))
    metrics = {k: float(v) for k, v in (info or {}).items() if isinstance(v, int | float) and k != "loss"}
    return loss, metrics


def dataset_features(sample: Mapping[str, Any], image_keys: list[str] | None, rename_map: Mapping[str, str]):
    """(input_features, output_features, image_shapes) of lerobot from one `vla.data` sample."""
    from lerobot.configs.types import FeatureType, PolicyFeature

    cameras = sorted(k for k in sample if k.startswith(IMAGE_PREFIX))
    if image_keys is not None:
        missing = [k for k in image_keys if k not in cameras]
        if missing:
            raise LerobotConfigError(
                f"model.image_keys {missing} are not cameras of the dataset (it has {cameras})"
            )
        cameras = list(image_keys)
    shapes = {k: tuple(int(x) for x in sample[k].shape) for k in cameras}  # (H, W, 3)
    inputs = {
        rename_map.get(k, k): PolicyFeature(FeatureType.VISUAL, (3, h, w)) for k, (h, w, _) in shapes.items()
    }
    inputs[rename_map.get(STATE_KEY, STATE_KEY)] = PolicyFeature(
        FeatureType.STATE, (int(sample[STATE_KEY].shape[-1]),)
    )
    outputs = {ACTION: PolicyFeature(FeatureType.ACTION, (int(sample[ACTION].shape[-1]),))}
    return inputs, outputs, shapes


def lerobot_stats(stats: Mapping[str, Any], config) -> dict[str, dict[str, np.ndarray]]:
    """Our stats (state, action) as lerobot's, plus ImageNet stats for cameras it normalises by mean/std."""
    from lerobot.configs.types import FeatureType, NormalizationMode
    from lerobot.utils.constants import IMAGENET_STATS

    out = {}
    for key, feature in config.input_features.items():
        if feature.type is FeatureType.VISUAL:
            if config.normalization_mapping.get("VISUAL") is NormalizationMode.MEAN_STD:
                out[key] = {k: np.asarray(v, dtype=np.float32) for k, v in IMAGENET_STATS.items()}
        elif feature.type is FeatureType.STATE:
            out[key] = {k: np.asarray(v, dtype=np.float32) for k, v in stats[STATE_KEY].items()}
    out[ACTION] = {k: np.asarray(v, dtype=np.float32) for k, v in stats[ACTION].items()}
    return out


@contextlib.contextmanager
def local_tokenizer(path: str | Path | None) -> Iterator[None]:
    """Make lerobot's tokenizer step load `path` whatever hub name the policy type asks for (offline)."""
    if path is None:
        yield
        return
    from lerobot.processor import tokenizer_processor
    from transformers import AutoTokenizer

    class _Local:
        @staticmethod
        def from_pretrained(name, *args, **kwargs):
            return AutoTokenizer.from_pretrained(str(path))

    saved = tokenizer_processor.AutoTokenizer
    tokenizer_processor.AutoTokenizer = _Local
    try:
        yield
    finally:
        tokenizer_processor.AutoTokenizer = saved


def _needs_hub(e: Exception, config: LerobotModelConfig) -> LerobotConfigError:
    return LerobotConfigError(
        f"lerobot {config.policy_type} needs files that are not local ({type(e).__name__}: {str(e).splitlines()[0]});"
        " set model.tokenizer_path to a local tokenizer directory (and a local VLM id in model.overrides where the "
        "type reads one, e.g. smolvla's vlm_model_name); nothing is downloaded"
    )


def declared_action_space(config: LerobotModelConfig, dataset, sample: Mapping[str, Any]) -> str:
    """model.action_space, else the data layout's (DROID -> droid_joint_velocity); must fit the data's dims."""
    from vla.conventions import DROID_JOINT_VELOCITY, LIBERO_OSC_DELTA, action_space

    layout = getattr(getattr(dataset, "libero", None), "layout", None)
    name = config.action_space or (
        DROID_JOINT_VELOCITY if getattr(layout, "is_droid", False) else LIBERO_OSC_DELTA
    )
    space = action_space(name)
    dims = (int(sample[ACTION].shape[-1]), int(sample[STATE_KEY].shape[-1]))
    if dims != (space.action_dim, space.state_dim):
        raise LerobotConfigError(
            f"model.action_space {name!r} is {space.action_dim}-D actions / {space.state_dim}-D state, the dataset "
            f"has {dims[0]}-D / {dims[1]}-D; set model.action_space to the data's space"
        )
    return name


def build_policy(config: LerobotModelConfig, dataset, stats: Mapping[str, Any], device: str = "cpu"):
    """(lerobot policy in train mode on `device`, LerobotBatchProcessor) for a `vla.data` ChunkDataset."""
    from lerobot.policies.factory import get_policy_class, make_pre_post_processors

    sample = dataset[int(dataset.valid_starts[0])]
    inputs, outputs, shapes = dataset_features(sample, config.image_keys, config.rename_map)
    space = declared_action_space(config, dataset, sample)
    lr_config = config.lerobot_config(inputs, outputs, device)
    if getattr(lr_config, "chunk_size", dataset.chunk_len) != dataset.chunk_len:
        raise LerobotConfigError(
            f"chunk_size {lr_config.chunk_size} != the dataset's chunk_len {dataset.chunk_len}"
        )
    policy_cls = get_policy_class(config.policy_type)
    try:
        with local_tokenizer(config.tokenizer_path):
            if config.pretrained_path is not None:
                policy = policy_cls.from_pretrained(config.pretrained_path, config=lr_config, strict=True)
            else:
                policy = policy_cls(config=lr_config)
            pre, post = make_pre_post_processors(lr_config, dataset_stats=lerobot_stats(stats, lr_config))
    except OSError as e:
        raise _needs_hub(e, config) from e
    except RuntimeError as e:  # strict load: missing / unexpected keys
        raise LerobotConfigError(f"model.pretrained_path={config.pretrained_path!r} does not fit: {e}") from e
    meta = {
        "format": META_FORMAT,
        "policy_type": config.policy_type,
        "model": config.to_dict(),
        "action_space": space,
        "image_shapes": {k: list(v) for k, v in shapes.items()},
        "rename_map": dict(config.rename_map),
        "state_dim": int(sample[STATE_KEY].shape[-1]),
        "action_dim": int(sample[ACTION].shape[-1]),
        "chunk_len": int(dataset.chunk_len),
        "n_action_steps": int(getattr(lr_config, "n_action_steps", dataset.chunk_len)),
    }
    processor = LerobotBatchProcessor(pre, post, meta, dict(stats), config.tokenizer_path)
    # the trainer calls model.compute_loss(inputs); a bound method survives the trainer's deepcopies (EMA, FSDP)
    policy.compute_loss = types.MethodType(compute_loss, policy)
    return policy.to(device).train(), processor


def save_checkpoint(path: str | Path, policy: torch.nn.Module, processor: LerobotBatchProcessor) -> Path:
    """The trainer's export_fn: lerobot's files, then stats.json, tokenizer/, and pion_lerobot.json last."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    policy.save_pretrained(path)
    processor.preprocessor.save_pretrained(path)
    processor.postprocessor.save_pretrained(path)
    (path / STATS_FILE).write_text(json.dumps(processor.stats, indent=1))
    if processor.tokenizer_path is not None:
        shutil.copytree(processor.tokenizer_path, path / TOKENIZER_DIR, dirs_exist_ok=True)
    (path / META_FILE).write_text(json.dumps(processor.meta, indent=2))
    return path


def is_lerobot_checkpoint(path: str | Path) -> bool:
    return (Path(path) / META_FILE).is_file()


def load_checkpoint(path: str | Path, device: str = "cpu"):
    """(lerobot policy in eval mode, LerobotBatchProcessor) from a directory written by `save_checkpoint`."""
    from lerobot.configs.policies import PreTrainedConfig
    from lerobot.policies.factory import get_policy_class
    from lerobot.processor import PolicyProcessorPipeline
    from lerobot.processor.converters import (
        batch_to_transition,
        policy_action_to_transition,
        transition_to_batch,
        transition_to_policy_action,
    )

    path = Path(path)
    if not is_lerobot_checkpoint(path):
        raise LerobotConfigError(f"{path} is not a pion-train lerobot checkpoint ({META_FILE} is missing)")
    meta = json.loads((path / META_FILE).read_text())
    if meta.get("format") != META_FORMAT:
        raise LerobotConfigError(f"{path / META_FILE}: format {meta.get('format')!r} != {META_FORMAT}")
    config = PreTrainedConfig.from_pretrained(path)
    config.device = device
    policy = get_policy_class(meta["policy_type"]).from_pretrained(path, config=config, strict=True)
    tokenizer = path / TOKENIZER_DIR
    overrides: dict[str, Any] = {"device_processor": {"device": device}}
    if tokenizer.is_dir():
        from transformers import AutoTokenizer

        overrides["tokenizer_processor"] = {"tokenizer": AutoTokenizer.from_pretrained(str(tokenizer))}
    pre = PolicyProcessorPipeline.from_pretrained(
        path, config_filename=PREPROCESSOR, overrides=overrides,
        to_transition=batch_to_transition, to_output=transition_to_batch,
    )  # fmt: skip
    post = PolicyProcessorPipeline.from_pretrained(
        path, config_filename=POSTPROCESSOR, to_transition=policy_action_to_transition,
        to_output=transition_to_policy_action,
    )  # fmt: skip
    stats = json.loads((path / STATS_FILE).read_text())
    processor = LerobotBatchProcessor(pre, post, meta, stats, str(tokenizer) if tokenizer.is_dir() else None)
    return policy.to(device).eval(), processor
