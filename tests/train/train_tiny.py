"""A tiny stand-in policy, processor and dataset implementing the trainer's contract (tests only).

Parameter names follow the routing contract (vision_backbone.*, projector.*, language_model.*, action_head.*
with a final fc2, action_queries, proprio_projector.*), the processor uses its generator for a random
augmentation and the model draws from the global torch RNG in compute_loss (like flow-matching noise), so
exact resume has to restore every RNG. Also runnable as a script: `python train_tiny.py CONFIG.json`.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_model
from torch import nn
from torch.utils.data import Dataset

H = W = 8
T, A, S = 4, 7, 8


@dataclass
class TinyConfig:
    model_type: str = "tiny"
    hidden: int = 32
    layers: int = 2
    chunk_len: int = T
    noise: float = 0.01  # std of the global-RNG input noise in compute_loss

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TinyConfig:
        return cls(**d)


class TinyPolicy(nn.Module):
    def __init__(self, config: TinyConfig) -> None:
        super().__init__()
        self.config = c = config
        self.vision_backbone = nn.Sequential(nn.Linear(2 * 3 * H * W, c.hidden), nn.GELU())
        self.projector = nn.Linear(c.hidden, c.hidden)
        self.language_model = nn.Module()
        self.language_model.layers = nn.ModuleList(
            nn.Sequential(nn.Linear(c.hidden, c.hidden), nn.GELU()) for _ in range(c.layers)
        )
        self.language_model.norm = nn.LayerNorm(c.hidden)
        self.action_queries = nn.Parameter(torch.randn(c.chunk_len, c.hidden) * 0.02)
        self.proprio_projector = nn.Linear(S, c.hidden)
        self.action_head = nn.Module()
        self.action_head.fc1 = nn.Linear(c.hidden, c.hidden)
        self.action_head.fc2 = nn.Linear(c.hidden, A)

    def _features(self, inputs: dict) -> torch.Tensor:
        x = self.vision_backbone(inputs["pixel_values"].flatten(1))
        if self.training and self.config.noise > 0:
            x = x + self.config.noise * torch.randn_like(x)  # global RNG, as flow-matching noise would
        x = self.projector(x) + self.proprio_projector(inputs["proprio"])
        for layer in self.language_model.layers:
            x = x + layer(x)
        x = self.language_model.norm(x)
        q = x.unsqueeze(1) + self.action_queries.unsqueeze(0)
        return self.action_head.fc2(torch.nn.functional.gelu(self.action_head.fc1(q)))

    def compute_loss(self, inputs: dict):
        pred = self._features(inputs)
        err = (pred - inputs["action"]).abs().mean(-1)
        mask = ~inputs["action_is_pad"]
        loss = (err * mask).sum() / mask.sum().clamp_min(1)
        if inputs.get("poison") is not None:
            loss = loss * inputs["poison"]
        return loss, {"l1": float(loss.detach())}

    @torch.no_grad()
    def sample_actions(self, inputs: dict) -> torch.Tensor:
        return self._features(inputs)


class TinyDataset(Dataset):
    """Deterministic synthetic samples: the action chunk is a fixed linear map of state and image."""

    def __init__(self, n: int = 96, seed: int = 0, poison_from: int | None = None) -> None:
        rng = np.random.default_rng(seed)
        self.images = rng.integers(0, 256, size=(n, 2, H, W, 3), dtype=np.uint8)
        self.states = rng.standard_normal((n, S)).astype(np.float32)
        wmap = rng.standard_normal((S + 1, T * A)).astype(np.float32) * 0.3
        img = self.images.reshape(n, -1).mean(1, keepdims=True).astype(np.float32) / 255.0
        self.actions = (
            np.tanh(np.concatenate([self.states, img], 1) @ wmap).reshape(n, T, A).astype(np.float32)
        )
        self.poison_from = poison_from

    def __len__(self) -> int:
        return len(self.states)

    def __getitem__(self, i: int) -> dict:
        return {
            "observation.images.image": torch.from_numpy(self.images[i, 0]),
            "observation.images.image2": torch.from_numpy(self.images[i, 1]),
            "observation.state": torch.from_numpy(self.states[i]),
            "action": torch.from_numpy(self.actions[i]),
            "action_is_pad": torch.zeros(T, dtype=torch.bool),
            "task": "pick up the tiny thing",
            "index": i,
        }


class TinyProcessor:
    """processor(batch, train, generator): images to floats with a generator-driven brightness jitter."""

    def __init__(self, poison_at_call: int | None = None, delay: float = 0.0, jitter: bool = True) -> None:
        self.jitter = jitter
        self.poison = poison_at_call  # NaN injection for tests: the loss is NaN from this (1-based) call on
        self.delay = delay  # seconds of sleep per call (to kill a subprocess at a chosen step)
        self.calls = 0
        self.stats = {"action": {"q01": [-1.0] * A, "q99": [1.0] * A}}

    def __call__(self, batch: dict, train: bool, generator: torch.Generator | None = None) -> dict:
        imgs = torch.stack([batch["observation.images.image"], batch["observation.images.image2"]], 1)
        pix = imgs.permute(0, 1, 4, 2, 3).float() / 255.0
        if train and self.jitter:
            pix = pix * (1.0 + 0.1 * (torch.rand(pix.shape[0], 1, 1, 1, 1, generator=generator) - 0.5))
        out = {
            "pixel_values": pix,
            "proprio": batch["observation.state"].float(),
            "action": batch["action"],
            "action_is_pad": batch["action_is_pad"],
        }
        self.calls += 1
        if self.poison is not None and train and self.calls >= self.poison:
            out["poison"] = torch.tensor(float("nan"))
        if self.delay:
            time.sleep(self.delay)
        return out


def export(path: Path, model: nn.Module, processor) -> None:
    """Stand-in for vla.models.checkpoint.save_pretrained: config.json + model.safetensors + stats.json."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps({"model_type": "tiny", "model": model.config.to_dict()}))
    save_model(model, str(path / "model.safetensors"))
    (path / "stats.json").write_text(json.dumps(processor.stats))


OPTIM = {"preset": "vla_adapter", "lr": 3e-3, "weight_decay": 0.0, "verbose": False,
         "pion": {"ns_dtype": "float32"}, "muon": {"ns_dtype": "float32"}}  # fmt: skip


def run(
    cfg: dict,
    n: int = 96,
    poison: int | None = None,
    model_cfg: dict | None = None,
    delay: float = 0.0,
    evaluate_fn=None,
    jitter: bool = True,
):
    """Build the stand-ins and train with `cfg` (a TrainConfig dict; optional `optim` key)."""
    from vla.train import TrainConfig, Trainer

    cfg = dict(cfg)
    optim = cfg.pop("optim", OPTIM)
    torch.manual_seed(0)
    model = TinyPolicy(TinyConfig(**(model_cfg or {})))
    return Trainer(
        TrainConfig.from_dict(cfg),
        model=model,
        processor=TinyProcessor(poison, delay, jitter),
        dataset=TinyDataset(n),
        optim_cfg=optim,
        model_config=model.config.to_dict(),
        export_fn=export,
        evaluate_fn=evaluate_fn,
    ).fit()


if __name__ == "__main__":
    spec = json.loads(Path(sys.argv[1]).read_text())
    torch.set_num_threads(1)
    run(
        spec["train"],
        n=spec.get("n", 96),
        model_cfg=spec.get("model"),
        delay=spec.get("delay", 0.0),
        jitter=spec.get("jitter", True),
    )
