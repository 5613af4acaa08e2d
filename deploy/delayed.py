"""A policy wrapper with injected inference latency: the robot loop's behaviour with a slow policy, measured
without one (`benchmarks/deploy_async_chunks.py`, `tests/deploy/test_deploy_async.py`).

`DelayedPolicy(policy, delay_s)` answers no sooner than `delay_s` after it was asked: it sleeps out what the
wrapped policy's own inference left of `delay_s`, so the latency the loop sees is max(inference, delay_s).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from vla.protocol import Policy


class DelayedPolicy:
    def __init__(self, policy: Policy, delay_s: float):
        if delay_s < 0:
            raise ValueError(f"delay_s must be >= 0, got {delay_s}")
        self.policy = policy
        self.spec = policy.spec
        self.delay_s = float(delay_s)
        self.latencies_s: list[float] = []  # of every query, as the caller saw it

    def reset(self) -> None:
        self.policy.reset()

    def predict_chunk(self, batch: Mapping[str, Any]) -> np.ndarray:
        t0 = time.perf_counter()
        chunk = self.policy.predict_chunk(batch)
        left = self.delay_s - (time.perf_counter() - t0)
        if left > 0:
            time.sleep(left)
        self.latencies_s.append(time.perf_counter() - t0)
        return chunk
