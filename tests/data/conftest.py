"""Synthetic LIBERO-like demonstrations (no simulator) for dataset-format tests."""

from __future__ import annotations

import numpy as np
import pytest

from envs.datagen.record import Demo
from envs.experts.runner import EpisodeResult
from vla.data.layouts import ACTION, IMAGE, STATE, WRIST


def synthetic_demo(task_id: int, length: int, seed: int, res: int = 32) -> Demo:
    rng = np.random.default_rng(seed)
    frames = {
        IMAGE: rng.integers(0, 256, (length, res, res, 3), dtype=np.uint8),
        WRIST: rng.integers(0, 256, (length, res, res, 3), dtype=np.uint8),
        STATE: rng.normal(size=(length, 8)).astype(np.float32),
        ACTION: np.clip(rng.normal(size=(length, 7)), -1, 1).astype(np.float32),
    }
    result = EpisodeResult("libero_object", task_id, seed, True, length, "hold")
    return Demo(f"pick up object {task_id} and place it in the basket", frames, result, dropped_noops=0)


@pytest.fixture
def make_demo():
    return synthetic_demo
