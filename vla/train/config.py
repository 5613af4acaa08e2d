"""Trainer configuration: one dataclass per concern, built from the plain dict of `configs/train.yaml`.

Every field has a comment; every check lives in `__post_init__`; an unknown key raises (a typo in a config must
not go unnoticed). `TrainConfig.from_dict` takes the hydra config minus the `model`, `optim` and `data` groups.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

SCHEDULES = ("cosine", "multistep", "constant")
AUTOCAST = ("none", "bf16")
STRATEGIES = ("auto", "ddp", "fsdp")


@dataclass
class ScheduleConfig:
    name: str = "constant"  # cosine (warmup + cosine) | multistep (reference MultiStepLR) | constant
    warmup_steps: int = 0  # linear warmup: lr·(k+1)/warmup_steps for update k < warmup_steps
    min_lr_ratio: float = 0.0  # cosine: final lr = base lr · min_lr_ratio
    decay_steps: int | None = None  # cosine: steps until the floor (null = the run's `steps`)
    milestones: list[int] = field(default_factory=lambda: [100_000])  # multistep: updates where lr ×= gamma
    gamma: float = 0.1  # multistep decay factor (reference: 0.1)

    def __post_init__(self) -> None:
        if self.name not in SCHEDULES:
            raise ValueError(f"schedule.name must be one of {SCHEDULES}, got {self.name!r}")
        if self.warmup_steps < 0:
            raise ValueError(f"schedule.warmup_steps must be >= 0, got {self.warmup_steps}")
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ValueError(f"schedule.min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")
        if self.decay_steps is not None and self.decay_steps <= self.warmup_steps:
            raise ValueError("schedule.decay_steps must exceed schedule.warmup_steps (or be null)")
        self.milestones = [int(m) for m in self.milestones]
        if self.milestones != sorted(self.milestones) or any(m <= 0 for m in self.milestones):
            raise ValueError(f"schedule.milestones must be increasing positive steps, got {self.milestones}")
        if not 0.0 < self.gamma <= 1.0:
            raise ValueError(f"schedule.gamma must be in (0, 1], got {self.gamma}")


@dataclass
class PrecisionConfig:
    autocast: str = "bf16"  # none | bf16: autocast of forward + loss (GPU); off on CPU unless cpu_autocast
    cpu_autocast: bool = False  # also autocast on CPU (slow on CPUs without native bf16 matmul)
    tf32: bool = True  # allow TF32 matmul / cuDNN on CUDA

    def __post_init__(self) -> None:
        if self.autocast not in AUTOCAST:
            raise ValueError(f"precision.autocast must be one of {AUTOCAST}, got {self.autocast!r}")


@dataclass
class EMAConfig:
    decay: float | None = (
        None  # null = no EMA; else shadow ← decay·shadow + (1 − decay)·param after each update
    )
    start_step: int = 0  # before this many updates the shadow just copies the parameters

    def __post_init__(self) -> None:
        if self.decay is not None and not 0.0 < self.decay < 1.0:
            raise ValueError(f"ema.decay must be in (0, 1) or null, got {self.decay}")


@dataclass
class LoRAConfig:
    enabled: bool = False  # LoRA adapters on every Linear of the backbone (needs `peft`)
    r: int = 64  # adapter rank (upstream VLA-Adapter recipe: 64)
    alpha: int | None = None  # scaling numerator; null = 2·r (upstream)
    dropout: float = 0.0
    backbone_pattern: str = r"(^|\.)(vision_backbone|projector|language_model)\."  # names of the backbone
    exclude_pattern: str = r"lm_head"  # never adapted (peft's all-linear also skips the output layer)

    def __post_init__(self) -> None:
        if self.r <= 0:
            raise ValueError(f"lora.r must be positive, got {self.r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"lora.dropout must be in [0, 1), got {self.dropout}")


@dataclass
class CheckpointConfig:
    every: int = 500  # write a checkpoint every N updates (and at the end); 0 = only at the end
    keep_last: int = 3  # older step checkpoints are deleted (the best one by eval is always kept)
    save_ema: bool = True  # also export the EMA weights (when ema.decay is set) under ema/

    def __post_init__(self) -> None:
        if self.every < 0:
            raise ValueError(f"checkpoint.every must be >= 0, got {self.every}")
        if self.keep_last < 1:
            raise ValueError(f"checkpoint.keep_last must be >= 1, got {self.keep_last}")


@dataclass
class LogConfig:
    every: int = 10  # TensorBoard / JSONL / progress-bar interval in updates
    tensorboard: bool = True
    wandb: bool = False  # optional Weights & Biases logging (off by default)
    wandb_project: str = "pion-vla"
    wandb_mode: str = "offline"  # online | offline | disabled
    progress: bool = True  # tqdm progress bar with ETA (rank 0)
    update_norms: bool = (
        True  # per-group update norm and Pion zero-update fraction (copies params on log steps)
    )

    def __post_init__(self) -> None:
        if self.every < 1:
            raise ValueError(f"log.every must be >= 1, got {self.every}")


@dataclass
class SpectralConfig:
    every: int = 0  # effective rank of gradients and updates per routing bucket every N updates; 0 = off
    max_dim: int = 4096  # skip matrices with a side above this (SVD cost)

    def __post_init__(self) -> None:
        if self.every < 0:
            raise ValueError(f"spectral.every must be >= 0, got {self.every}")


@dataclass
class EvalConfig:
    every: int = 0  # evaluate a checkpoint every N updates (and at the end when > 0); 0 = off
    use_ema: bool = True  # evaluate the EMA export when there is one
    suite: str = "libero_object"  # the CLI's harness settings (unused by the loop itself)
    task_ids: list[int] | None = None  # null = every task of the suite
    init_states: list[int] | None = None  # explicit init-state indices (null = 0..trials_per_task-1)
    trials_per_task: int = 10
    seeds: list[int] = field(default_factory=lambda: [7])
    workers: Any = "auto"
    max_steps: int | None = None  # per-episode step cap (null = the suite's)
    videos_per_task: int = 0

    def __post_init__(self) -> None:
        if self.every < 0:
            raise ValueError(f"eval.every must be >= 0, got {self.every}")
        if self.trials_per_task < 1:
            raise ValueError(f"eval.trials_per_task must be >= 1, got {self.trials_per_task}")


@dataclass
class DistConfig:
    strategy: str = (
        "auto"  # auto (DDP when launched by torchrun with >1 process) | ddp | fsdp (FSDP2 fully_shard)
    )
    backend: str | None = None  # null = nccl on CUDA, gloo on CPU
    fsdp_min_params: int = (
        1_000_000  # fsdp: modules with at least this many parameters are sharded separately
    )

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(f"distributed.strategy must be one of {STRATEGIES}, got {self.strategy!r}")


@dataclass
class TrainConfig:
    steps: int = 1500  # optimizer updates
    batch_size: int = 64  # GLOBAL samples per update (all ranks × all accumulation micro-batches)
    grad_accum: int = 1  # micro-batches per update and rank
    seed: int = 7
    out_dir: str = "outputs/train"  # runs live in out_dir/<run_name>/
    run_name: str | None = None  # null = a timestamp; resume=true then picks the newest run in out_dir
    resume: bool = False  # continue the run from its latest complete checkpoint
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    num_workers: int = 2  # DataLoader worker processes
    grad_clip: float | None = None  # max global gradient norm; null = no clipping (reference)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    precision: PrecisionConfig = field(default_factory=PrecisionConfig)
    ema: EMAConfig = field(default_factory=EMAConfig)
    lora: LoRAConfig = field(default_factory=LoRAConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    log: LogConfig = field(default_factory=LogConfig)
    spectral: SpectralConfig = field(default_factory=SpectralConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    distributed: DistConfig = field(default_factory=DistConfig)

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")
        if self.batch_size < 1 or self.grad_accum < 1:
            raise ValueError(
                f"batch_size and grad_accum must be >= 1, got {self.batch_size}, {self.grad_accum}"
            )
        if self.num_workers < 0:
            raise ValueError(f"num_workers must be >= 0, got {self.num_workers}")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ValueError(f"grad_clip must be positive or null, got {self.grad_clip}")

    def micro_batch(self, world_size: int) -> int:
        """Samples per forward pass on one rank; the global batch must split evenly."""
        per = self.batch_size // (world_size * self.grad_accum)
        if per * world_size * self.grad_accum != self.batch_size:
            raise ValueError(
                f"batch_size={self.batch_size} must be divisible by world_size×grad_accum = "
                f"{world_size}×{self.grad_accum}; change batch_size or grad_accum"
            )
        return per

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TrainConfig:
        return _build(cls, dict(d), "")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _build(cls, d: dict, where: str):
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(d) - set(fields)
    if unknown:
        raise ValueError(
            f"unknown trainer config keys {sorted(where + k for k in unknown)}; valid: {sorted(fields)}"
        )
    kwargs = {}
    for name, value in d.items():
        sub = (
            fields[name].default_factory if fields[name].default_factory is not dataclasses.MISSING else None
        )
        if sub is not None and dataclasses.is_dataclass(sub) and isinstance(value, Mapping):
            kwargs[name] = _build(sub, dict(value), f"{where}{name}.")
        elif value is not None and isinstance(value, Mapping):
            raise ValueError(f"trainer config key {where}{name} must not be a mapping")
        else:
            kwargs[name] = list(value) if isinstance(value, tuple) else value
    return cls(**kwargs)
