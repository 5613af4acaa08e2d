"""The training loop: data → processor → model.compute_loss → optimizer, with checkpoints, logs and hooks.

    result = Trainer(cfg, model=model, processor=processor, dataset=dataset, optim_cfg=optim_cfg,
                     model_config=model.config.to_dict(), evaluate_fn=fn).fit()

It relies only on the model contract (`compute_loss(inputs) -> (loss, metrics)`, `.config`), the processor
contract (`processor(batch, train=True, generator=g) -> inputs`) and a map-style dataset (plus, optionally,
the data package's sampler and collate function), so every policy trains through the same code.
"""

from __future__ import annotations

import contextlib
import copy
import math
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from vla.optim import build_optimizer
from vla.train import checkpointing, state
from vla.train.config import TrainConfig
from vla.train.distributed import Dist, broadcast_object, mean_across, setup, teardown, wrap
from vla.train.ema import EMA
from vla.train.hooks import EvaluateFn, UpdateProbe, eval_record, model_regions, spectral_stats
from vla.train.lora import apply_lora
from vla.train.metrics import MetricsLogger, Progress
from vla.train.sampler import EpochShuffle, ResumableBatches
from vla.train.schedules import build_scheduler


class NonFiniteLossError(RuntimeError):
    """The loss (or gradient norm) became NaN/inf; training stopped before applying that update."""


@dataclass
class TrainResult:
    run_dir: Path
    step: int
    last_loss: float | None
    best: dict | None = None
    evals: list[dict] = field(default_factory=list)


def _to_device(inputs: Mapping, device: torch.device) -> dict:
    return {
        k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in inputs.items()
    }


def _seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_run_dir(cfg: TrainConfig, d: Dist) -> Path:
    out = Path(cfg.out_dir)
    if cfg.run_name:
        return out / cfg.run_name
    name = None
    if d.is_main:
        if cfg.resume:
            runs = (
                [p for p in out.glob("*") if state.latest_checkpoint(p) is not None] if out.is_dir() else []
            )
            if not runs:
                raise state.ResumeError(f"resume=true but no run with a complete checkpoint under {out}")
            name = max(runs, key=lambda p: state.latest_checkpoint(p)[1].stat().st_mtime).name
        else:
            name = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return out / broadcast_object(name, d)


class Trainer:
    def __init__(
        self,
        cfg: TrainConfig,
        *,
        model: nn.Module,
        processor: Callable,
        dataset,
        optim_cfg: Mapping,
        model_config: Mapping,
        sampler=None,
        collate_fn: Callable | None = None,
        evaluate_fn: EvaluateFn | None = None,
        export_fn: checkpointing.ExportFn | None = None,
        extra_meta: Mapping | None = None,
    ) -> None:
        self.cfg = cfg
        self.model, self.processor, self.dataset = model, processor, dataset
        self.optim_cfg, self.model_config = dict(optim_cfg), dict(model_config)
        self.base_sampler, self.collate_fn = sampler, collate_fn
        self.evaluate_fn = evaluate_fn
        self.export_fn = export_fn or checkpointing.default_export
        self.extra_meta = dict(extra_meta or {})

    # ---- setup ------------------------------------------------------------------------------------------
    def _setup(self) -> None:
        cfg = self.cfg
        self.d = d = setup(cfg.distributed, cfg.device)
        self.micro = cfg.micro_batch(d.world_size)
        self.run_dir = resolve_run_dir(cfg, d)
        resume_from = state.latest_checkpoint(self.run_dir) if cfg.resume else None
        if cfg.resume and cfg.run_name and resume_from is None and d.is_main:
            print(
                f"[pion-train] resume=true: no checkpoint in {self.run_dir} yet, starting fresh", flush=True
            )
        if resume_from is not None:
            state.check_same_model(state.read_meta(resume_from[1]), self.model_config, resume_from[1])
        if cfg.lora.enabled:
            targets = apply_lora(self.model, cfg.lora)
            if d.is_main:
                print(
                    f"[pion-train] LoRA r={cfg.lora.r} on {len(targets)} backbone Linear layers", flush=True
                )
        if resume_from is not None:
            checkpointing.load_weights(resume_from[1], self.model)
        if d.device.type == "cuda" and cfg.precision.tf32:
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        self.model.to(d.device)
        self.shell = copy.deepcopy(self.model).cpu() if d.strategy == "fsdp" and d.is_main else None
        self.module = wrap(self.model, d, cfg.distributed)
        self.optimizer = build_optimizer(
            self.model, self.optim_cfg, verbose=bool(self.optim_cfg.get("verbose", True)) and d.is_main
        )
        self.scheduler = build_scheduler(self.optimizer, cfg.schedule, cfg.steps)
        self.ema = EMA(self.model, cfg.ema.decay, cfg.ema.start_step) if cfg.ema.decay is not None else None
        self.step = 0
        _seed_all(cfg.seed + 1000 * d.rank)
        self.proc_gen = torch.Generator().manual_seed(cfg.seed * 7919 + d.rank)
        base = (
            self.base_sampler if self.base_sampler is not None else EpochShuffle(len(self.dataset), cfg.seed)
        )
        self.batches = ResumableBatches(base, cfg.batch_size, self.micro, d.rank, d.world_size)
        self.evals: list[dict] = []
        self.best: dict | None = state.read_best(self.run_dir) if resume_from is not None else None
        if resume_from is not None:
            loaded = checkpointing.load_trainer_state(
                resume_from[1], d, self.optimizer, self.scheduler, self.ema
            )
            self.step = int(loaded["trainer"]["step"])
            r = loaded["rank"]
            state.set_rng_state(r["rng"])
            self.proc_gen.set_state(r["processor_rng"])
            self.batches.load_state_dict(r["sampler"])
            if d.is_main:
                print(
                    f"[pion-train] resumed {self.run_dir} at step {self.step} ({resume_from[1].name})",
                    flush=True,
                )
        self.consumed = 0
        self.logger = MetricsLogger(
            self.run_dir,
            enabled=d.is_main,
            tensorboard=cfg.log.tensorboard,
            wandb=cfg.log.wandb,
            wandb_project=cfg.log.wandb_project,
            wandb_mode=cfg.log.wandb_mode,
            config={"train": cfg.to_dict(), "optim": self.optim_cfg, "model": self.model_config},
            resume_step=self.step if resume_from is not None else None,
        )
        self.loader = DataLoader(
            self.dataset,
            batch_sampler=self.batches,
            num_workers=cfg.num_workers,
            collate_fn=self.collate_fn,
            pin_memory=d.device.type == "cuda",
            generator=torch.Generator().manual_seed(cfg.seed),  # never draws from the global RNG
            persistent_workers=False,
        )
        self.probe = UpdateProbe(self.optimizer)
        self.regions = model_regions(self.model)
        device_type = d.device.type
        use_autocast = cfg.precision.autocast == "bf16" and (
            device_type == "cuda" or cfg.precision.cpu_autocast
        )
        self.autocast = lambda: torch.autocast(device_type, dtype=torch.bfloat16, enabled=use_autocast)

    # ---- one update -------------------------------------------------------------------------------------
    def _micro_step(self, it, last: bool) -> tuple[torch.Tensor, dict]:
        t0 = time.perf_counter()
        batch = next(it)
        self.data_s += time.perf_counter() - t0  # time the loop waited for the loader
        self.consumed += 1
        inputs = _to_device(self.processor(batch, train=True, generator=self.proc_gen), self.d.device)
        sync = contextlib.nullcontext() if last or self.d.strategy != "ddp" else self.module.no_sync()
        with sync:
            with self.autocast():
                loss, metrics = self.module(inputs)
            (loss / self.cfg.grad_accum).backward()
        return loss.detach().float(), metrics

    def _update(self, it) -> dict[str, float]:
        cfg, step = self.cfg, self.step + 1
        t0 = time.perf_counter()
        losses, extra = [], {}
        self.data_s = 0.0
        for i in range(cfg.grad_accum):
            loss, metrics = self._micro_step(it, last=i == cfg.grad_accum - 1)
            losses.append(loss)
            for k, v in (metrics or {}).items():
                extra[f"train/{k}"] = extra.get(f"train/{k}", 0.0) + float(v) / cfg.grad_accum
        loss = float(mean_across(torch.stack(losses).mean(), self.d))
        params = [p for p in self.model.parameters() if p.grad is not None]
        max_norm = cfg.grad_clip if cfg.grad_clip is not None else float("inf")
        grad_norm = torch.nn.utils.clip_grad_norm_(params, max_norm) if params else torch.tensor(0.0)
        grad_norm = float(grad_norm.full_tensor() if hasattr(grad_norm, "full_tensor") else grad_norm)
        if not (math.isfinite(loss) and math.isfinite(grad_norm)):
            what = "loss" if not math.isfinite(loss) else "gradient norm"
            last = state.latest_checkpoint(self.run_dir)
            raise NonFiniteLossError(
                f"non-finite {what} ({loss if what == 'loss' else grad_norm}) at step {step}; the update was not "
                f"applied. Last good checkpoint: {last[1] if last else 'none'}"
            )
        log_step = step % cfg.log.every == 0 or step == cfg.steps
        spectral_step = cfg.spectral.every > 0 and step % cfg.spectral.every == 0
        probe = (log_step and cfg.log.update_norms) or spectral_step
        lrs = {f"lr/{label}": float(g["lr"]) for label, _, g in self.probe.groups}
        if probe:
            self.probe.snapshot()
        self.optimizer.step()
        out: dict[str, float] = {}
        if probe:
            stats, updates = self.probe.measure(keep_updates=spectral_step)
            out.update(stats)
            if spectral_step:
                self.spectral = spectral_stats(self.optimizer, updates, cfg.spectral.max_dim, self.regions)
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.ema is not None:
            self.ema.update(self.model, self.step)
        self.step = step
        dt = time.perf_counter() - t0
        out.update({"loss": loss, "grad_norm": grad_norm, **lrs, **extra})
        out.update({"time/step_s": dt, "time/data_s": self.data_s})
        out["throughput/samples_per_s"] = cfg.batch_size / dt if dt > 0 else 0.0
        return out

    # ---- checkpoints and evaluation ---------------------------------------------------------------------
    def _save(self, metrics: Mapping) -> Path | None:
        rank_state = {
            "rng": state.rng_state(),
            "processor_rng": self.proc_gen.get_state(),
            "sampler": self.batches.state_at(self.consumed),
        }
        meta = {
            "model_config": self.model_config,
            "train_config": self.cfg.to_dict(),
            "optim_config": self.optim_cfg,
            "loss": metrics.get("loss"),
            **self.extra_meta,
        }
        path = checkpointing.save(
            self.run_dir, self.step, d=self.d, model=self.model, shell=self.shell, processor=self.processor,
            optimizer=self.optimizer, scheduler=self.scheduler, ema=self.ema, rank_state=rank_state, meta=meta,
            export_fn=self.export_fn, save_ema=self.cfg.checkpoint.save_ema,
        )  # fmt: skip
        if self.d.is_main:
            protect = {self.best["step"]} if self.best else set()
            state.prune(self.run_dir, self.cfg.checkpoint.keep_last, protect)
        return path

    def _evaluate(self) -> None:
        found = dict(state.complete_checkpoints(self.run_dir)).get(self.step) if self.d.is_main else None
        if self.d.is_main and found is not None:
            export = found / ("ema" if self.ema is not None and self.cfg.eval.use_ema and (found / "ema").is_dir()
                              else "pretrained")  # fmt: skip
            rec = eval_record(self.evaluate_fn(export, self.step))
            self.logger.log(self.step, rec)
            self.logger.log(self.step, rec, file="evals.jsonl")
            self.evals.append({"step": self.step, **rec})
            if self.best is None or rec["eval/success_rate"] > self.best["eval/success_rate"]:
                self.best = {"step": self.step, "path": str(found), **rec}
                state.write_best(self.run_dir, self.best)
            self.progress.write(
                f"[pion-train] step {self.step}: success {rec['eval/success_rate']:.1%} "
                f"[{rec['eval/ci95_low']:.1%}, {rec['eval/ci95_high']:.1%}] on {int(rec['eval/episodes'])} episodes"
            )
        state_barrier = broadcast_object(None, self.d)  # ranks > 0 wait for the evaluation
        del state_barrier

    # ---- the run ----------------------------------------------------------------------------------------
    def fit(self) -> TrainResult:
        self._setup()
        cfg, d = self.cfg, self.d
        self.spectral: dict[str, float] = {}
        self.progress = Progress(cfg.steps, self.step, cfg.log.progress and d.is_main)
        last_loss = None
        try:
            if self.step >= cfg.steps:
                return TrainResult(self.run_dir, self.step, None, self.best)
            it = iter(self.loader)
            window: list[float] = []
            while self.step < cfg.steps:
                out = self._update(it)
                last_loss = out["loss"]
                window.append(last_loss)
                step = self.step
                if step % cfg.log.every == 0 or step == cfg.steps:
                    out["loss_avg"] = sum(window) / len(window)
                    window = []
                    self.logger.log(step, out)
                if self.spectral:
                    self.logger.log(step, self.spectral)
                    self.logger.log(step, self.spectral, file="spectral.jsonl")
                    self.spectral = {}
                lr = next((v for k, v in out.items() if k.startswith("lr/")), 0.0)
                self.progress.update(1, loss=f"{last_loss:.4g}", lr=f"{lr:.2e}")
                ckpt_step = cfg.checkpoint.every > 0 and step % cfg.checkpoint.every == 0
                eval_step = (
                    self.evaluate_fn is not None
                    and cfg.eval.every > 0
                    and (step % cfg.eval.every == 0 or step == cfg.steps)
                )
                if ckpt_step or eval_step or step == cfg.steps:
                    self._save(out)
                if eval_step:
                    self._evaluate()
        finally:
            self.progress.close()
            self.logger.close()
            teardown(d)
        return TrainResult(self.run_dir, self.step, last_loss, self.best, self.evals)
