"""Where training numbers go (rank 0 only): metrics JSONL, TensorBoard, optional W&B, a progress bar.

`metrics.jsonl` has one JSON object per logged update: `{"step": k, "loss": ..., "lr/<group>": ..., ...}`;
floats are written with full precision (repr), so two runs can be compared bit for bit. Timing fields
(`time/*`, `throughput/*`) naturally differ between runs. On resume the file is cut back to the
checkpoint's step and TensorBoard purges the events after it, so a resumed run reads as one run.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path

METRICS_FILE = "metrics.jsonl"


def _clean(value):
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no NaN/inf; keep them readable
    return value


def truncate_jsonl(path: Path, last_step: int) -> None:
    """Keep only records with step <= last_step (those after a checkpoint are replayed on resume)."""
    if not path.is_file():
        return
    keep = []
    for line in path.read_text().splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:  # a line cut by a kill
            continue
        if rec.get("step", 0) <= last_step:
            keep.append(line)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text("".join(line + "\n" for line in keep))
    tmp.replace(path)


class MetricsLogger:
    def __init__(
        self,
        run_dir: Path,
        *,
        enabled: bool,
        tensorboard: bool = True,
        wandb: bool = False,
        wandb_project: str = "pion-vla",
        wandb_mode: str = "offline",
        config: Mapping | None = None,
        resume_step: int | None = None,
    ) -> None:
        self.enabled = enabled
        self.run_dir = Path(run_dir)
        self.tb = None
        self.wandb = None
        self._files: dict[str, object] = {}
        if not enabled:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if resume_step is not None:
            for name in (METRICS_FILE, "spectral.jsonl", "evals.jsonl"):
                truncate_jsonl(self.run_dir / name, resume_step)
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            purge = None if resume_step is None else resume_step + 1
            self.tb = SummaryWriter(log_dir=str(self.run_dir / "tb"), purge_step=purge)
        if wandb:
            try:
                import wandb as wb
            except ImportError as e:
                raise ImportError("log.wandb=true needs the `wandb` package") from e
            self.wandb = wb.init(
                project=wandb_project,
                dir=str(self.run_dir),
                name=self.run_dir.name,
                id=self.run_dir.name,
                resume="allow",
                mode=wandb_mode,
                config=dict(config or {}),
            )

    def log(self, step: int, values: Mapping[str, float], file: str = METRICS_FILE) -> None:
        if not self.enabled:
            return
        rec = {"step": step, **{k: _clean(v) for k, v in values.items()}}
        f = self._files.get(file)
        if f is None:
            f = self._files[file] = open(self.run_dir / file, "a")  # noqa: SIM115 - kept open for the run
        f.write(json.dumps(rec) + "\n")
        f.flush()
        if self.tb is not None:
            for k, v in values.items():
                if isinstance(v, int | float) and math.isfinite(v):
                    self.tb.add_scalar(k, v, step)
        if self.wandb is not None:
            self.wandb.log({k: v for k, v in values.items() if isinstance(v, int | float)}, step=step)

    def close(self) -> None:
        for f in self._files.values():
            f.close()
        self._files.clear()
        if self.tb is not None:
            self.tb.close()
            self.tb = None
        if self.wandb is not None:
            self.wandb.finish()
            self.wandb = None


class Progress:
    """tqdm bar over updates with ETA (rank 0; silent elsewhere or when disabled)."""

    def __init__(self, total: int, initial: int, enabled: bool) -> None:
        self.bar = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(
                total=total, initial=initial, unit="step", desc="train", dynamic_ncols=True, smoothing=0.1
            )

    def update(self, n: int = 1, **postfix) -> None:
        if self.bar is not None:
            if postfix:
                self.bar.set_postfix(postfix, refresh=False)
            self.bar.update(n)

    def write(self, msg: str) -> None:
        if self.bar is not None:
            self.bar.write(msg)
        else:
            print(msg, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
