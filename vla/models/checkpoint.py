"""One checkpoint format for every policy model: a directory that is all eval and serving need.

    <dir>/config.json        {"format_version": 1, "model_type": ..., "model": {...}, "processor": {...}}
    <dir>/model.safetensors  the model's state_dict
    <dir>/tokenizer/         tokenizer.json + friends (HF PreTrainedTokenizerFast.save_pretrained)
    <dir>/stats.json         normalisation stats (vla.data.stats format)

    save_pretrained(dir, model, processor)
    model, processor = from_pretrained(dir, device="cpu")
    policy = load_policy_dir(dir, device="cpu", dtype=None)      # a vla.protocol.Policy (TorchPolicy)

Loading checks everything before any weight is copied (files, model type, config, stats dimensions,
tensor names and shapes) and raises `CheckpointError` naming the file and the fix; a model is never
half-loaded. Constructing the model does not read `backbone.*_path`: the checkpoint has all the weights.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from vla.models.processor import PolicyProcessor
from vla.models.registry import MODEL_TYPES, model_classes, processor_config
from vla.models.tokenizer import load_tokenizer

FORMAT_VERSION = 1
CONFIG_FILE, WEIGHTS_FILE, STATS_FILE, TOKENIZER_DIR = (
    "config.json",
    "model.safetensors",
    "stats.json",
    "tokenizer",
)
REQUIRED = (CONFIG_FILE, WEIGHTS_FILE, STATS_FILE, f"{TOKENIZER_DIR}/tokenizer.json")
_FIX = "re-export it with vla.models.checkpoint.save_pretrained (or pion-train)"


class CheckpointError(ValueError):
    """A checkpoint directory cannot be loaded; the message names the file and the fix."""


def save_pretrained(path: str | Path, model: nn.Module, processor: PolicyProcessor) -> Path:
    """Write `model` and `processor` (config, tokenizer, stats) to the directory `path`."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    config = {
        "format_version": FORMAT_VERSION,
        "model_type": model.config.model_type,
        "model": model.config.to_dict(),
        "processor": processor.cfg.to_dict(),
    }
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(
        tensors, str(path / WEIGHTS_FILE), metadata={"format": "pt", "model_type": model.config.model_type}
    )
    processor.tokenizer.save_pretrained(str(path / TOKENIZER_DIR))
    (path / STATS_FILE).write_text(json.dumps(processor.stats, indent=1))
    (path / CONFIG_FILE).write_text(
        json.dumps(config, indent=2)
    )  # last: its presence marks a complete export
    return path


def _read_json(file: Path) -> Any:
    try:
        return json.loads(file.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{file}: cannot read JSON ({e}); {_FIX}") from e


def from_pretrained(
    path: str | Path, device: str | torch.device = "cpu"
) -> tuple[nn.Module, PolicyProcessor]:
    """(model in eval mode on `device`, processor) from a checkpoint directory."""
    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(
            f"{path} is not a directory; pass a checkpoint directory written by save_pretrained"
        )
    for name in REQUIRED:
        if not (path / name).is_file():
            raise CheckpointError(f"{path / name} is missing; a checkpoint needs {list(REQUIRED)}; {_FIX}")
    cfg = _read_json(path / CONFIG_FILE)
    config_file = path / CONFIG_FILE
    if not isinstance(cfg, dict) or cfg.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{config_file}: format_version {cfg.get('format_version')!r} != {FORMAT_VERSION}; {_FIX}"
        )
    model_type = cfg.get("model_type")
    if model_type not in MODEL_TYPES:
        raise CheckpointError(
            f"{config_file}: model_type {model_type!r} is not one of {sorted(MODEL_TYPES)}; load it with the code "
            "that wrote it, or register the type in vla/models/registry.py"
        )
    config_cls, model_cls = model_classes(model_type)
    try:
        config = config_cls.from_dict(cfg["model"])
        pcfg = processor_config(config, cfg.get("processor"))
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{config_file}: invalid model/processor config ({e}); {_FIX}") from e
    try:
        tokenizer = load_tokenizer(path / TOKENIZER_DIR)
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{path / TOKENIZER_DIR}: cannot load the tokenizer ({e}); {_FIX}") from e
    if len(tokenizer) > config.backbone.vocab_size:
        raise CheckpointError(
            f"{path / TOKENIZER_DIR}: {len(tokenizer)} tokens exceed backbone.vocab_size {config.backbone.vocab_size}"
            f" in {config_file}; the tokenizer belongs to another model"
        )
    stats = _read_json(path / STATS_FILE)
    try:
        processor = PolicyProcessor(pcfg, tokenizer, stats)
    except ValueError as e:
        raise CheckpointError(f"{path / STATS_FILE}: {e}") from e
    model = model_cls(config)
    _check_weights(path / WEIGHTS_FILE, model)
    model.load_state_dict(load_file(str(path / WEIGHTS_FILE)), strict=True)
    return model.to(device).eval(), processor


def tensor_mismatch(
    file: Path, own: dict[str, torch.Tensor], fix: str = _FIX
) -> tuple[list[str], list[str], list[str]]:
    """(missing, unexpected, other-shape) tensor names of a safetensors file against `own`; unreadable -> error."""
    try:
        with safe_open(str(file), framework="pt") as f:
            shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118 (safe_open is not iterable)
    except Exception as e:  # safetensors raises its own error types for corrupt headers
        raise CheckpointError(f"{file}: not a readable safetensors file ({e}); {fix}") from e
    missing, unexpected = sorted(set(own) - set(shapes)), sorted(set(shapes) - set(own))
    wrong = sorted(k for k in set(own) & set(shapes) if tuple(own[k].shape) != shapes[k])
    return missing, unexpected, wrong


def _check_weights(file: Path, model: nn.Module) -> None:
    missing, unexpected, wrong = tensor_mismatch(file, model.state_dict())
    if missing or unexpected or wrong:
        raise CheckpointError(
            f"{file} does not match the model in config.json: {len(missing)} missing (e.g. {missing[:3]}), "
            f"{len(unexpected)} unexpected (e.g. {unexpected[:3]}), {len(wrong)} of another shape (e.g. {wrong[:3]}); "
            f"the weights and config.json come from different models; {_FIX}"
        )


def load_policy_dir(path: str | Path, device: str | torch.device = "cpu", **kwargs: Any):
    """A TorchPolicy (vla.protocol.Policy) from a checkpoint directory; kwargs go to TorchPolicy."""
    from vla.models.policy import TorchPolicy

    model, processor = from_pretrained(path, device=device)
    kwargs.setdefault("policy_id", f"checkpoint:{Path(path).resolve()}")
    return TorchPolicy(model, processor, device=device, **kwargs)


def init_checkpoint(
    model_yaml: str | Path, out: str | Path, stats: Any = None, seed: int = 0, pretrained: bool = False
) -> Path:
    """Write a checkpoint of a freshly built model (random init unless `pretrained`) from a model YAML.

    `stats`: a stats dict or a stats.json path; default: [-1, 1] bounds (identity-like normalisation).
    """
    from omegaconf import OmegaConf

    from vla.models.processor import default_stats
    from vla.models.registry import build_model, build_processor, model_config_from_dict

    cfg = OmegaConf.to_container(OmegaConf.load(str(model_yaml)), resolve=True)
    config = model_config_from_dict(cfg)
    torch.manual_seed(seed)
    model = build_model(config, pretrained=pretrained)
    if isinstance(stats, str | Path):
        stats = _read_json(Path(stats))
    stats = stats or default_stats(config.proprio_dim, config.action_dim)
    return save_pretrained(out, model, build_processor(config, cfg.get("processor"), stats))


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(
        description="Write a freshly initialised checkpoint directory from a model YAML."
    )
    ap.add_argument("model_yaml", help="e.g. configs/model/vla_adapter_cpu.yaml")
    ap.add_argument("out", help="checkpoint directory to write")
    ap.add_argument("--stats", default=None, help="stats.json of the dataset (default: [-1, 1] bounds)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--pretrained", action="store_true", help="load backbone.*_path weights")
    args = ap.parse_args()
    print(init_checkpoint(args.model_yaml, args.out, args.stats, args.seed, args.pretrained))
