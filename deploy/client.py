"""Client for the policy server, Lazy-Pirate style.

Each request is sent on a REQ socket and polled with a timeout. On timeout the socket is closed with
LINGER 0 (a REQ socket that missed its reply is stuck), reopened, and the request resent, up to
`retries` attempts. When every attempt goes unanswered, `ServerUnreachable` says why it may be:
server down, wrong address, or a CURVE authentication failure (libzmq refuses those silently).
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import zmq

from deploy import codec
from deploy.curve import CurveClientKeys
from deploy.schema import PROTOCOL_NAME, SCHEMA_VERSION, make_request
from vla.protocol import PolicySpec

log = logging.getLogger(__name__)


class ServerUnreachable(ConnectionError):
    """No reply within the deadline on any attempt."""


class RemoteError(RuntimeError):
    """The server answered with a structured error."""

    def __init__(self, code: str, message: str):
        super().__init__(f"server refused the request [{code}]: {message}")
        self.code = code
        self.message = message


@dataclass
class InferResult:
    actions: np.ndarray  # float32 (B, T, A)
    request_id: int
    rtt_ms: float  # client-measured round trip, including retries
    server_timing: dict[str, float]


class PolicyClient:
    def __init__(
        self,
        address: str = "tcp://127.0.0.1:5555",
        *,
        timeout_s: float = 2.5,
        retries: int = 3,
        max_message_bytes: int = 64 << 20,
        curve: CurveClientKeys | None = None,
    ):
        if retries < 1 or timeout_s <= 0:
            raise ValueError("need retries >= 1 and timeout_s > 0")
        self.address = address
        self.timeout_s = timeout_s
        self.retries = retries
        self.max_message_bytes = max_message_bytes
        self.curve = curve
        self._ids = itertools.count(1)
        self._ctx = zmq.Context()
        self._sock: zmq.Socket | None = None
        self.metadata: dict[str, Any] | None = None

    # ---------------------------------------------------------------- socket lifecycle
    def _open(self) -> zmq.Socket:
        sock = self._ctx.socket(zmq.REQ)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(
            zmq.SNDTIMEO, max(1, int(self.timeout_s * 1000))
        )  # a send must never block the robot loop
        if self.curve is not None:
            self.curve.apply(sock)
        sock.connect(self.address)
        return sock

    def _reset(self) -> None:
        if self._sock is not None:
            self._sock.close(linger=0)
            self._sock = None

    def close(self) -> None:
        self._reset()
        self._ctx.term()

    def __enter__(self) -> PolicyClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- requests
    def request(
        self,
        kind: str,
        obs: Mapping[str, Any] | None = None,
        *,
        timeout_s: float | None = None,
        retries: int | None = None,
    ) -> dict[str, Any]:
        """Send one request; return the decoded ok-reply. Raises ServerUnreachable or RemoteError."""
        rid = next(self._ids)
        payload = codec.encode(make_request(kind, rid, obs))
        timeout = self.timeout_s if timeout_s is None else timeout_s
        attempts = self.retries if retries is None else retries
        for attempt in range(1, attempts + 1):
            if self._sock is None:
                self._sock = self._open()
            deadline = time.monotonic() + timeout
            try:
                self._sock.send(payload)
            except zmq.Again:
                deadline = 0.0  # could not even queue the request: treat like a timeout
            while (left := deadline - time.monotonic()) > 0:
                if not self._sock.poll(max(1, int(left * 1000)), zmq.POLLIN):
                    break
                reply = codec.decode(self._sock.recv(), self.max_message_bytes)
                if not isinstance(reply, dict) or reply.get("v") != SCHEMA_VERSION:
                    raise RemoteError(
                        "bad_version",
                        f"server replied with schema {reply!r:.80}; client speaks v={SCHEMA_VERSION}",
                    )
                if reply.get("id") not in (rid, None):
                    log.warning("dropping stale reply id=%s (waiting for %s)", reply.get("id"), rid)
                    continue
                if not reply.get("ok"):
                    err = reply.get("error") or {}
                    raise RemoteError(str(err.get("code")), str(err.get("message")))
                return reply
            log.warning(
                "no reply from %s within %.2f s (attempt %d/%d); reconnecting",
                self.address,
                timeout,
                attempt,
                attempts,
            )
            self._reset()
        raise ServerUnreachable(
            f"no reply from {self.address} after {attempts} attempt(s) of {timeout:.2f} s: server down, wrong "
            "address, or authentication failure (CURVE: client key not in the server's allow-list, or wrong "
            "server public key)"
        )

    def hello(self, **kw: Any) -> dict[str, Any]:
        """Handshake: fetch and check the server metadata (protocol, schema version, policy spec)."""
        meta = self.request("hello", **kw)["metadata"]
        if meta.get("protocol") != PROTOCOL_NAME or meta.get("schema_version") != SCHEMA_VERSION:
            raise RemoteError(
                "bad_version",
                f"server speaks {meta.get('protocol')} v{meta.get('schema_version')}, "
                f"client {PROTOCOL_NAME} v{SCHEMA_VERSION}",
            )
        self.metadata = meta
        return meta

    @property
    def spec(self) -> PolicySpec:
        if self.metadata is None:
            self.hello()
        return PolicySpec.from_dict(self.metadata["policy"])

    def ping(self, **kw: Any) -> float:
        """Round-trip time in ms."""
        t0 = time.perf_counter()
        self.request("ping", **kw)
        return (time.perf_counter() - t0) * 1000

    def health(self, **kw: Any) -> dict[str, Any]:
        return self.request("health", **kw)["health"]

    def infer(self, batch: Mapping[str, Any], **kw: Any) -> InferResult:
        t0 = time.perf_counter()
        reply = self.request("infer", batch, **kw)
        actions = reply.get("actions")
        if not isinstance(actions, np.ndarray) or actions.ndim != 3 or not np.all(np.isfinite(actions)):
            raise RemoteError("bad_action", "reply 'actions' is not a finite (B, T, A) array")
        return InferResult(
            actions.astype(np.float32, copy=False),
            reply["id"],
            (time.perf_counter() - t0) * 1000,
            reply.get("timing", {}),
        )
