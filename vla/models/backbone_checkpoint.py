"""Backbone-only checkpoints: a policy's VLM (vision towers, projector, language model) without its head.

A backbone checkpoint is two files side by side:

    <name>.safetensors   the VLMBackbone tensors: vision_backbone.*, projector.*, language_model.*
    <name>.json          {"format_version": 1, "kind": "vla_backbone", "backbone": {BackboneConfig fields},
                          "tokenizer": {"size": N, "sha256": ...}, "num_tensors": K, "provenance": {...}}

    save_backbone("b.safetensors", policy, tokenizer, provenance={...})
    init_backbone(policy, "b.safetensors", tokenizer)   # copies the VLM weights; the head, ActionQuery /
                                                        # meta-queries and proprio projector keep their init
    export_backbone("<run>/final", "b.safetensors")     # from a policy checkpoint directory (save_pretrained)
    pion-export-backbone <checkpoint dir> <out.safetensors>

`pion-train init_backbone=<path>` (configs/train.yaml) initialises the policy's VLM from such a file after the
model is built; relative paths resolve against the working directory, then the repository root (so the
shipped `assets/backbones/*.safetensors` work from anywhere). Everything is checked before any weight is
copied: the backbone config (sizes; weight paths and the attention kernel are ignored), the tokenizer
(embedding rows are token ids, so the vocabulary must be the same), tensor names and shapes. A mismatch raises
`CheckpointError` naming the differing keys. Nothing outside the backbone is read or written.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from vla.config import REPO_ROOT
from vla.models.backbone import BackboneConfig, VLMBackbone
from vla.models.checkpoint import CheckpointError, tensor_mismatch

FORMAT_VERSION = 1
KIND = "vla_backbone"
BACKBONE_PREFIXES = ("vision_backbone.", "projector.", "language_model.")
# BackboneConfig fields that do not change the weights: where they were loaded from and the attention kernel.
IGNORED_CONFIG_KEYS = ("dino_path", "siglip_path", "llm_path", "prismatic_path", "attn_implementation")
_FIX = "export a matching backbone with pion-export-backbone, or fix model.backbone / init_backbone"


def sidecar(path: str | Path) -> tuple[Path, Path]:
    """(<name>.safetensors, <name>.json) for a path given as either file (or without suffix)."""
    path = Path(path)
    stem = path.with_suffix("") if path.suffix in (".safetensors", ".json") else path
    return stem.with_suffix(".safetensors"), stem.with_suffix(".json")


def resolve(path: str | Path) -> Path:
    """An existing backbone file: as given (relative to the working directory), else under the repository root."""
    weights, _ = sidecar(path)
    if weights.is_file() or weights.is_absolute():
        return weights
    in_repo = REPO_ROOT / weights
    return in_repo if in_repo.is_file() else weights


def backbone_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The VLM's tensors of a policy (every state-dict entry under BACKBONE_PREFIXES), detached on CPU."""
    if not isinstance(model, VLMBackbone):
        raise CheckpointError(
            f"{type(model).__name__} is not a VLMBackbone policy; it has no backbone to save"
        )
    sd = {
        k: v.detach().contiguous().cpu()
        for k, v in model.state_dict().items()
        if k.startswith(BACKBONE_PREFIXES)
    }
    if not sd:
        raise CheckpointError(f"{type(model).__name__} has no parameters under {BACKBONE_PREFIXES}")
    return sd


def tokenizer_fingerprint(tokenizer) -> dict[str, Any]:
    """Size and SHA-256 of the token -> id map: equal fingerprints mean the embedding rows mean the same tokens."""
    vocab = sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1])
    digest = hashlib.sha256(json.dumps(vocab, ensure_ascii=False).encode()).hexdigest()
    return {"size": len(tokenizer), "sha256": digest}


def weight_config(cfg: BackboneConfig) -> dict[str, Any]:
    """The BackboneConfig fields that determine the weights (IGNORED_CONFIG_KEYS dropped)."""
    return {k: v for k, v in cfg.to_dict().items() if k not in IGNORED_CONFIG_KEYS}


def save_backbone(
    path: str | Path, model: nn.Module, tokenizer, provenance: dict[str, Any] | None = None
) -> Path:
    """Write the VLM of `model` to <path>.safetensors and its config to <path>.json; return the weights path."""
    weights, meta_path = sidecar(path)
    sd = backbone_state_dict(model)
    weights.parent.mkdir(parents=True, exist_ok=True)
    save_file(sd, str(weights), metadata={"format": "pt", "kind": KIND})
    meta = {
        "format_version": FORMAT_VERSION,
        "kind": KIND,
        "backbone": weight_config(model.backbone_config),
        "tokenizer": tokenizer_fingerprint(tokenizer),
        "num_tensors": len(sd),
        "num_parameters": int(sum(t.numel() for t in sd.values())),
        "provenance": provenance or {},
    }
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    return weights


def read_backbone_meta(path: str | Path) -> dict[str, Any]:
    """The JSON of a backbone checkpoint, validated (format, kind, a complete BackboneConfig)."""
    weights, meta_path = sidecar(path)
    for f in (weights, meta_path):
        if not f.is_file():
            raise CheckpointError(
                f"{f} is missing; a backbone checkpoint is <name>.safetensors + <name>.json; {_FIX}"
            )
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{meta_path}: cannot read JSON ({e}); {_FIX}") from e
    if not isinstance(meta, dict) or meta.get("kind") != KIND or meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{meta_path}: not a backbone checkpoint (kind {KIND!r}, format_version {FORMAT_VERSION}); {_FIX}"
        )
    try:
        BackboneConfig.from_dict(meta["backbone"])
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{meta_path}: invalid backbone config ({e}); {_FIX}") from e
    return meta


def check_backbone(path: str | Path, model: nn.Module, tokenizer=None) -> dict[str, Any]:
    """Raise CheckpointError unless the file fits `model`'s VLM (config, tokenizer, tensors); return its meta."""
    weights, meta_path = sidecar(path)
    meta = read_backbone_meta(weights)
    if not isinstance(model, VLMBackbone):
        raise CheckpointError(
            f"{type(model).__name__} is not a VLMBackbone policy; {weights} cannot initialise it"
        )
    theirs, ours = meta["backbone"], weight_config(model.backbone_config)
    differ = sorted(k for k in set(theirs) | set(ours) if theirs.get(k) != ours.get(k))
    if differ:
        pairs = ", ".join(f"{k} (file {theirs.get(k)!r}, model {ours.get(k)!r})" for k in differ)
        raise CheckpointError(f"{meta_path}: backbone config differs from model.backbone in: {pairs}; {_FIX}")
    if tokenizer is not None:
        want = tokenizer_fingerprint(tokenizer)
        if meta.get("tokenizer") != want:
            raise CheckpointError(
                f"{meta_path}: tokenizer differs (file {meta.get('tokenizer')}, model {want}); the embedding rows "
                f"belong to another vocabulary; {_FIX}"
            )
    own = backbone_state_dict(model)
    missing, unexpected, wrong = tensor_mismatch(weights, own, _FIX)
    if missing or unexpected or wrong:
        raise CheckpointError(
            f"{weights} does not fit the model's backbone: missing {missing[:3]}, unexpected {unexpected[:3]}, "
            f"other shape {wrong[:3]}; {_FIX}"
        )
    return meta


def init_backbone(model: nn.Module, path: str | Path, tokenizer=None) -> dict[str, Any]:
    """Copy a backbone checkpoint into `model`'s VLM in place (after `check_backbone`); return its meta."""
    weights = resolve(path)
    meta = check_backbone(weights, model, tokenizer)
    sd = load_file(str(weights))
    params = dict(model.named_parameters())
    buffers = dict(model.named_buffers())
    with torch.no_grad():
        for key, value in sd.items():
            target = params.get(key, buffers.get(key))
            if target is None:  # a state-dict entry that is neither (cannot happen for nn.Module state dicts)
                raise CheckpointError(f"{weights}: {key} is not a parameter or buffer of the model")
            target.copy_(value.to(target.dtype))
    return meta


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=REPO_ROOT, check=True)  # fmt: skip
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def export_backbone(checkpoint_dir: str | Path, out: str | Path, note: str = "") -> Path:
    """Write the backbone of a policy checkpoint directory (vla.models.checkpoint format) to `out`."""
    from vla.models.checkpoint import from_pretrained

    checkpoint_dir = Path(checkpoint_dir)
    model, processor = from_pretrained(checkpoint_dir)
    provenance = {
        "source_checkpoint": str(checkpoint_dir),
        "model_type": model.config.model_type,
        "exported_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "commit": git_commit(),
        "note": note,
    }
    return save_backbone(out, model, processor.tokenizer, provenance)


def main(argv: list[str] | None = None) -> None:
    """pion-export-backbone: a policy checkpoint directory -> backbone checkpoint (.safetensors + .json)."""
    ap = argparse.ArgumentParser(prog="pion-export-backbone", description=main.__doc__)
    ap.add_argument(
        "checkpoint_dir", help="policy checkpoint directory, e.g. <run>/final or .../step_N/pretrained"
    )
    ap.add_argument(
        "out", help="backbone file to write, e.g. assets/backbones/mine.safetensors (+ mine.json)"
    )
    ap.add_argument("--note", default="", help="free text stored in the JSON's provenance (e.g. the recipe)")
    args = ap.parse_args(argv)
    try:
        weights = export_backbone(args.checkpoint_dir, args.out, args.note)
    except (CheckpointError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    meta = read_backbone_meta(weights)
    size = weights.stat().st_size / 2**20
    print(f"{weights} ({meta['num_parameters']:,} parameters, {size:.1f} MiB) + {sidecar(weights)[1].name}")


if __name__ == "__main__":
    main()
