"""A policy served by `pion-serve` (ZeroMQ `PolicyServer`), seen as a local `vla.protocol.Policy`.

`vla.policies.load_policy("tcp://gpu-box:5555")` builds one; the handshake runs in the constructor, so an
unreachable server or an incompatible policy is reported before the first step. The robot loop uses
the underlying `PolicyClient` (`.client`) for its per-request deadlines and outage handling.
"""

from __future__ import annotations

import numpy as np

from deploy.client import PolicyClient
from deploy.curve import CurveClientKeys


class RemotePolicy:
    def __init__(
        self,
        address: str = "tcp://127.0.0.1:5555",
        timeout_s: float = 30.0,
        retries: int = 3,
        curve: CurveClientKeys | None = None,
    ) -> None:
        self.address = address
        self.client = PolicyClient(address, timeout_s=timeout_s, retries=retries, curve=curve)
        try:
            self.spec = (
                self.client.spec
            )  # handshake: fails here, with the reason, if the server is unreachable
        except BaseException:
            self.client.close()
            raise

    def reset(self) -> None:
        pass  # the server is stateless per request; chunking happens in the caller's executor

    def predict_chunk(self, batch) -> np.ndarray:
        return self.client.infer(batch).actions

    def close(self) -> None:
        self.client.close()
