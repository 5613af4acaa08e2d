"""Helpers of the `pion-train model=lerobot` tests: a tiny ACT trained by the real entry point (in process)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from vla.cli.train import main

BATCH = 8  # = the valid starts of an 11-frame episode in chunks of 4: every update sees the same 8 samples
# lerobot ACT at toy width; ResNet-18 stays (ACT's only vision backbone), random init (nothing downloaded)
ACT = ("{dim_model: 16, n_heads: 2, dim_feedforward: 32, n_encoder_layers: 1, n_decoder_layers: 1, "
       "n_vae_encoder_layers: 1, latent_dim: 4, chunk_size: 4, n_action_steps: 4, pretrained_backbone_weights: null}")  # fmt: skip


def train_act(dataset: Path, out: Path, *extra: str) -> Path:
    """`pion-train model=lerobot model.policy_type=act ...` on one camera (half the ResNet cost); returns the run."""
    main([
        "model=lerobot", "model.policy_type=act", f"++model.overrides={ACT}",
        "model.image_keys=[observation.images.image]", f"data.root={dataset}", "data.repo_id=local/tiny",
        f"batch_size={BATCH}", "num_workers=0", "device=cpu", "seed=3", f"out_dir={out}", "run_name=r",
        "log.every=1", "log.progress=false", "log.tensorboard=false", "log.update_norms=false", *extra,
    ])  # fmt: skip
    return out / "r"


def losses(run: Path) -> list[float]:
    return [json.loads(line)["loss"] for line in (run / "metrics.jsonl").read_text().splitlines()]


def observation(spec, seed: int = 0, b: int = 2) -> dict:
    """A random protocol batch fitting `spec`."""
    rng = np.random.default_rng(seed)
    batch = {k: rng.integers(0, 256, (b, *s), dtype=np.uint8) for k, s in spec.image_shapes.items()}
    batch["observation.state"] = rng.normal(size=(b, spec.state_dim)).astype(np.float32)
    batch["task"] = ["pick up the bowl"] * b
    return batch
