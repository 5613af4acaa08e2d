"""A policy served by `deploy` (ZeroMQ `PolicyServer`), seen as a local `vla.protocol.Policy`.

    pion-eval policy=remote +policy_kwargs.address=tcp://gpu-box:5555

It runs in the harness's parent process: the observations of all workers are batched into one
request per round, so one server (e.g. on a GPU box) answers a whole evaluation.
"""

from __future__ import annotations

import numpy as np


class RemotePolicy:
    def __init__(self, address: str = "tcp://127.0.0.1:5555", timeout_s: float = 30.0, retries: int = 3) -> None:
        from deploy.client import PolicyClient

        self.client = PolicyClient(address, timeout_s=timeout_s, retries=retries)
        self.spec = self.client.spec  # handshake: fails here, with the reason, if the server is unreachable
        self.address = address

    def reset(self) -> None:
        pass  # the server is stateless per request; chunking happens in the episode loop

    def predict_chunk(self, batch) -> np.ndarray:
        return self.client.infer(batch).actions

    def close(self) -> None:
        self.client.close()
