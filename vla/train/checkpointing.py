"""Saving and restoring everything a run needs to continue bit for bit (the disk side is `state.py`).

Weights: the checkpoint's `pretrained/` export (the models package's `save_pretrained`) is also what a
resume loads, when it holds exactly the training module's tensors (same names, shapes, dtypes). When it
does not (LoRA adapters folded at export, a format that drops or converts tensors) the training weights
are written once more as `weights.safetensors` and resumed from there.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_model, save_model
from torch import nn

from vla.train import state as disk
from vla.train.distributed import Dist, barrier
from vla.train.lora import has_lora, merged_copy

ExportFn = Callable[[Path, nn.Module, object], None]
"""export(dir, model, processor): writes the model in the checkpoint format (vla.models.checkpoint.save_pretrained)."""

WEIGHTS = "weights.safetensors"
EXPORTED_WEIGHTS = "pretrained/model.safetensors"


def default_export(path: Path, model: nn.Module, processor) -> None:
    # lazy: the trainer itself does not need the models package
    from vla.models.checkpoint import save_pretrained

    save_pretrained(path, model, processor)


def export_matches(path: Path, model: nn.Module) -> bool:
    """True if the safetensors file at `path` holds every tensor of `model.state_dict()` as it is."""
    if not path.is_file():
        return False
    sd = model.state_dict()
    with safe_open(str(path), framework="pt") as f:
        keys = set(f.keys())
        if not keys <= set(sd):
            return False
        present = {k: f.get_slice(k) for k in keys}
        ptrs = {sd[k].data_ptr() for k in keys}
        for k, t in sd.items():
            if k in present:
                s = present[k]
                if tuple(s.get_shape()) != tuple(t.shape) or s.get_dtype() != _ST_DTYPE.get(t.dtype):
                    return False
            elif t.data_ptr() not in ptrs:  # only tied aliases of saved tensors may be left out
                return False
    return True


_ST_DTYPE = {
    torch.float32: "F32",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.float64: "F64",
    torch.int64: "I64",
    torch.int32: "I32",
    torch.bool: "BOOL",
    torch.uint8: "U8",
    torch.int8: "I8",
}


def plain_model(model: nn.Module, d: Dist, shell: nn.Module | None) -> nn.Module | None:
    """An unsharded module with the current weights (collective under FSDP; None on ranks > 0 there)."""
    if d.strategy != "fsdp":
        return model
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    full = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    if not d.is_main:
        return None
    shell.load_state_dict(full)
    return shell


def save(
    run_dir: Path,
    step: int,
    *,
    d: Dist,
    model: nn.Module,
    shell: nn.Module | None,
    processor,
    optimizer,
    scheduler,
    ema,
    rank_state: dict,
    meta: dict,
    export_fn: ExportFn,
    save_ema: bool,
) -> Path | None:
    """Write the checkpoint of `step` atomically; every rank must call this. Returns the path on rank 0."""
    tmp = disk.temp_dir_for(run_dir, step)
    if d.is_main:
        disk.begin_checkpoint(run_dir, step)
    barrier(d)
    plain = plain_model(model, d, shell)
    if d.strategy == "fsdp":
        disk.save_torch(optimizer.state_dict(), tmp / f"optimizer_rank{d.rank}.pt")
    disk.save_torch(rank_state, tmp / f"rank{d.rank}.pt")
    if d.is_main:
        lora = has_lora(plain)
        export = merged_copy(plain) if lora else plain
        export_fn(tmp / "pretrained", export, processor)
        if ema is not None and save_ema:
            ema_model = ema.copy_to(plain)
            export_fn(tmp / "ema", merged_copy(ema_model) if lora else ema_model, processor)
        weights = EXPORTED_WEIGHTS
        if lora or not export_matches(tmp / EXPORTED_WEIGHTS, plain):
            save_model(plain, str(tmp / WEIGHTS))
            weights = WEIGHTS
        trainer = {
            "step": step,
            "scheduler": scheduler.state_dict(),
            "ema": ema.state_dict() if ema is not None else None,
            "world_size": d.world_size,
        }
        if d.strategy != "fsdp":
            trainer["optimizer"] = optimizer.state_dict()
        disk.save_torch(trainer, tmp / disk.TRAINER_STATE)
    barrier(d)
    final = None
    if d.is_main:
        disk.write_meta(tmp, {**meta, "step": step, "weights": weights, "time": time.time()})
        final = disk.commit_checkpoint(run_dir, step)
    barrier(d)
    return final


def load_weights(ckpt: Path, model: nn.Module) -> None:
    """Training weights of a checkpoint into the (LoRA-wrapped if so, not yet sharded) model."""
    meta = disk.read_meta(ckpt)
    path = ckpt / meta.get("weights", EXPORTED_WEIGHTS)
    if not path.is_file():
        raise disk.ResumeError(
            f"checkpoint weights {path} are missing; delete {ckpt} to resume from an earlier one"
        )
    missing, unexpected = load_model(model, str(path), strict=False)
    if missing or unexpected:
        raise disk.ResumeError(
            f"checkpoint weights {path} do not fit the model: missing {missing[:5]}, unexpected {unexpected[:5]}"
            " (was the run started with another lora setting?)"
        )


def load_trainer_state(ckpt: Path, d: Dist, optimizer, scheduler, ema) -> dict:
    trainer = disk.load_torch(ckpt / disk.TRAINER_STATE)
    if d.strategy == "fsdp":
        if trainer["world_size"] != d.world_size:
            raise disk.ResumeError(
                f"an FSDP checkpoint written by {trainer['world_size']} processes needs as many to resume"
            )
        optimizer.load_state_dict(disk.load_torch(ckpt / f"optimizer_rank{d.rank}.pt"))
    else:
        if "optimizer" not in trainer:
            raise disk.ResumeError(f"{ckpt} was written under FSDP; resume it with distributed.strategy=fsdp")
        optimizer.load_state_dict(trainer["optimizer"])
    scheduler.load_state_dict(trainer["scheduler"])
    if ema is not None:
        if trainer.get("ema") is None:
            raise disk.ResumeError(
                f"{ckpt} has no EMA state but ema.decay is set; resume with ema.decay=null"
            )
        ema.load_state_dict(trainer["ema"])
    rank_file = ckpt / f"rank{d.rank}.pt"
    if not rank_file.is_file():  # more processes than the run had: fall back to rank 0's RNG (not bit-exact)
        rank_file = ckpt / "rank0.pt"
    return {"trainer": trainer, "rank": disk.load_torch(rank_file)}
