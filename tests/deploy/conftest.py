"""Shared helpers for the deploy tests: DROID observation batches and loopback servers."""

from __future__ import annotations

import numpy as np
import pytest

from deploy.droid import EXTERIOR_IMAGE, WRIST_IMAGE
from deploy.server import PolicyServer
from vla.protocol import STATE_KEY, TASK_KEY

LOOPBACK = "tcp://127.0.0.1:*"


def droid_batch(b: int = 1, size: int = 224, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {
        EXTERIOR_IMAGE: rng.integers(0, 256, (b, size, size, 3), dtype=np.uint8),
        WRIST_IMAGE: rng.integers(0, 256, (b, size, size, 3), dtype=np.uint8),
        STATE_KEY: rng.normal(size=(b, 8)).astype(np.float32),
        TASK_KEY: ["put the marker in the cup"] * b,
    }


@pytest.fixture
def serve():
    """serve(policy, **kw) -> running PolicyServer on a free loopback port; stopped at teardown."""
    servers: list[PolicyServer] = []

    def _serve(policy, **kw) -> PolicyServer:
        server = PolicyServer(policy, kw.pop("bind", LOOPBACK), **kw).start()
        servers.append(server)
        return server

    yield _serve
    for s in servers:
        s.stop()


class StateEchoPolicy:
    """Returns the state repeated along the chunk, so a test can tell whose reply is whose."""

    def __init__(self, chunk_len: int = 16, delay_s: float = 0.0):
        from deploy.droid import droid_spec

        self.spec = droid_spec("state-echo", chunk_len, 8)
        self.delay_s = delay_s
        self.calls: list[int] = []

    def reset(self) -> None:
        pass

    def predict_chunk(self, batch):
        import time

        from vla.protocol import validate_batch

        b = validate_batch(self.spec, batch)
        self.calls.append(b)
        if self.delay_s:
            time.sleep(self.delay_s)
        return np.repeat(batch[STATE_KEY][:, None, :], self.spec.chunk_len, 1).astype(np.float32)


class FaultyPolicy(StateEchoPolicy):
    """mode='raise' raises inside inference; mode='nan' returns NaN actions; mode='shape' the wrong shape."""

    def __init__(self, mode: str):
        super().__init__()
        self.mode = mode

    def predict_chunk(self, batch):
        chunk = super().predict_chunk(batch)
        if self.mode == "raise":
            raise RuntimeError("CUDA out of memory (simulated)")
        if self.mode == "nan":
            chunk[:, 3, 2] = np.nan
            return chunk
        return chunk[:, :5]


class AdversarialPolicy:
    """DROID-shaped chunks meant to hurt: saturating pushes toward joint limits, huge magnitudes,
    flipping gripper, and (if `nan_every`) a NaN action in every n-th chunk."""

    def __init__(
        self, seed: int = 0, nan_every: int = 0, chunk_len: int = 16, flip_every: int = 3, direction=None
    ):
        from deploy.droid import droid_spec

        self.spec = droid_spec("adversarial", chunk_len, 8)
        self.rng = np.random.default_rng(seed)
        self.nan_every = nan_every
        self.flip_every = flip_every  # reverse the push every n queries; 0 = never
        # per-joint push direction (+1 up, -1 down, 0 free); default alternates +1/-1
        self.direction = (
            np.where(np.arange(7) % 2 == 0, 1.0, -1.0) if direction is None else np.asarray(direction, float)
        )
        self.queries = 0

    def reset(self) -> None:
        pass

    def predict_chunk(self, batch):
        from vla.protocol import validate_batch

        b = validate_batch(self.spec, batch)
        self.queries += 1
        flip = self.flip_every and ((self.queries - 1) // self.flip_every) % 2 == 1
        sign = self.direction * (-1 if flip else 1)
        mag = self.rng.choice([1.0, 50.0, 1e6], size=(self.spec.chunk_len, 1))
        chunk = np.concatenate([sign * mag, self.rng.random((self.spec.chunk_len, 1))], 1)
        if self.nan_every and self.queries % self.nan_every == 0:
            chunk[2, 1] = np.nan
        return np.broadcast_to(chunk, (b, *chunk.shape)).astype(np.float32)


def sim_cameras():
    from deploy.cameras import SimCamera
    from deploy.droid import EXTERIOR_IMAGE, WRIST_IMAGE

    return {EXTERIOR_IMAGE: SimCamera("exterior", 180, 320, 4), WRIST_IMAGE: SimCamera("wrist", 180, 320, 3)}
