"""ZeroMQ ROUTER server that serves any `vla.protocol.Policy` to many clients.

One thread owns the socket. Each request is decoded, checked against the schema and the policy spec,
and answered; any fault (bad bytes, bad version, bad shapes, NaN, a raising policy, a NaN chunk)
becomes a structured error reply and the server keeps serving. Concurrent `infer` requests that are
already queued can be stacked into one `predict_chunk` call (`max_batch` > 1).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import zmq

from deploy import codec
from deploy.curve import CurveServerKeys, start_authenticator
from deploy.schema import (
    PROTOCOL_NAME,
    SCHEMA_VERSION,
    ErrorCode,
    RequestError,
    error_reply,
    ok_reply,
    parse_request,
)
from vla.protocol import STATE_KEY, TASK_KEY, Policy, ProtocolError, validate_batch, validate_chunk

log = logging.getLogger(__name__)


@dataclass
class ServerStats:
    started: float = field(default_factory=time.time)
    requests: int = 0
    errors: int = 0
    inferences: int = 0
    batched_calls: int = 0


@dataclass
class _Pending:
    envelope: list[bytes]
    request_id: Any
    t_client: float
    t_recv: float
    t0: float
    decode_ms: float
    obs: dict[str, Any]
    batch: int


class PolicyServer:
    """Serve `policy` on `bind` (e.g. "tcp://0.0.0.0:5555"; port "*" picks a free one, see `.endpoint`)."""

    def __init__(
        self,
        policy: Policy,
        bind: str = "tcp://127.0.0.1:5555",
        *,
        max_message_bytes: int = 8 << 20,
        max_batch: int = 1,
        batch_window_ms: float = 0.0,
        curve: CurveServerKeys | None = None,
    ):
        if not isinstance(policy, Policy):
            raise TypeError(
                f"{type(policy).__name__} does not implement vla.protocol.Policy (spec, reset, predict_chunk)"
            )
        if max_batch < 1:
            raise ValueError("max_batch must be >= 1")
        self.policy = policy
        self.spec = policy.spec
        self.max_message_bytes = int(max_message_bytes)
        self.max_batch = int(max_batch)
        self.batch_window_s = batch_window_ms / 1000.0
        self.stats = ServerStats()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ctx = zmq.Context()
        self._auth = start_authenticator(self._ctx, curve) if curve is not None else None
        self._sock = self._ctx.socket(zmq.ROUTER)
        self._sock.setsockopt(zmq.LINGER, 100)
        self._sock.setsockopt(zmq.ROUTER_HANDOVER, 1)  # a reconnecting client with the same identity wins
        # Hard cap: a peer sending far more than the limit is disconnected by libzmq before we allocate it.
        self._sock.setsockopt(zmq.MAXMSGSIZE, 2 * self.max_message_bytes + 4096)
        if curve is not None:
            curve.apply(self._sock)
        try:
            self._sock.bind(bind)
        except zmq.ZMQError as e:
            self._close_sockets()
            raise OSError(f"cannot bind policy server to {bind}: {e}") from e
        self.endpoint: str = self._sock.getsockopt_string(zmq.LAST_ENDPOINT)

    # ---------------------------------------------------------------- lifecycle
    def metadata(self) -> dict[str, Any]:
        spec = self.spec
        return {
            "protocol": PROTOCOL_NAME,
            "schema_version": SCHEMA_VERSION,
            "policy": spec.to_dict(),
            "image_keys": sorted(spec.image_shapes),
            "state_keys": [STATE_KEY],
            "task_key": TASK_KEY,
            "normalization": "server",  # clients send raw state and raw uint8 RGB images
            "max_message_bytes": self.max_message_bytes,
            "max_batch": self.max_batch,
        }

    def start(self) -> PolicyServer:
        """Serve in a background thread; returns self."""
        self._thread = threading.Thread(target=self.serve_forever, name="policy-server", daemon=True)
        self._thread.start()
        return self

    def request_stop(self) -> None:
        """Ask `serve_forever` to return after the request in hand (safe from a signal handler)."""
        self._stop.set()

    def stop(self, timeout: float = 5.0) -> None:
        """Graceful shutdown: finish the request in hand, refuse queued ones, close the socket."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def __enter__(self) -> PolicyServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def serve_forever(self) -> None:
        log.info("serving policy %s on %s", self.spec.policy_id, self.endpoint)
        poller = zmq.Poller()
        poller.register(self._sock, zmq.POLLIN)
        try:
            while not self._stop.is_set():
                if not poller.poll(50):
                    continue
                self._handle_burst()
            self._refuse_queued()
        finally:
            self._close_sockets()
            log.info("policy server on %s stopped", self.endpoint)

    def _close_sockets(self) -> None:
        self._sock.close()
        if self._auth is not None:
            self._auth.stop()
        self._ctx.term()

    # ---------------------------------------------------------------- request handling
    def _recv(self, flags: int = 0) -> list[bytes] | None:
        try:
            return self._sock.recv_multipart(flags, copy=True)
        except zmq.Again:
            return None

    def _send(self, envelope: list[bytes], reply: dict[str, Any]) -> None:
        try:
            self._sock.send_multipart([*envelope, codec.encode(reply)], zmq.NOBLOCK)
        except zmq.ZMQError as e:  # peer gone or its queue full: drop this reply, keep serving
            log.warning("could not send reply: %s", e)
        if not reply.get("ok"):
            self.stats.errors += 1

    def _handle_burst(self) -> None:
        """Answer every message readable now; stack the `infer` ones into batches of <= max_batch."""
        pending: list[_Pending] = []
        deadline = time.perf_counter() + self.batch_window_s
        while True:
            frames = self._recv(zmq.NOBLOCK)
            if frames is None:
                if pending and len(pending) < self.max_batch and time.perf_counter() < deadline:
                    self._sock.poll(max(1, int((deadline - time.perf_counter()) * 1000)))
                    continue
                break
            item = self._handle_message(frames)
            if item is not None:
                pending.append(item)
                if len(pending) >= self.max_batch:
                    self._infer(pending)
                    pending = []
        if pending:
            self._infer(pending)

    def _handle_message(self, frames: list[bytes]) -> _Pending | None:
        t_recv, t0 = time.time(), time.perf_counter()
        if len(frames) < 2:
            return None  # no routing identity: nothing to reply to
        self.stats.requests += 1
        envelope, payload = frames[:-1], frames[-1]
        rid = None
        try:
            try:
                msg = codec.decode(payload, self.max_message_bytes)
            except codec.DecodeError as e:
                code = ErrorCode.TOO_LARGE if len(payload) > self.max_message_bytes else ErrorCode.MALFORMED
                raise RequestError(code, str(e)) from None
            kind, rid, t_client = parse_request(msg)
            decode_ms = (time.perf_counter() - t0) * 1000
            if kind == "infer":
                obs = msg["obs"]
                if not isinstance(obs.get(TASK_KEY), list):
                    raise RequestError(
                        ErrorCode.BAD_OBSERVATION,
                        f"{TASK_KEY!r} must be a list of B strings (one instruction per batch row)",
                        rid,
                    )
                try:
                    b = validate_batch(self.spec, obs)
                except (ProtocolError, TypeError, ValueError) as e:
                    raise RequestError(ErrorCode.BAD_OBSERVATION, str(e), rid) from None
                return _Pending(envelope, rid, t_client, t_recv, t0, decode_ms, obs, b)
            timing = {"t_recv": t_recv, "decode_ms": decode_ms}
            self._send(
                envelope, ok_reply(kind, rid, t_client, self._finish_timing(timing, t0), **self._answer(kind))
            )
        except RequestError as e:
            self._send(
                envelope, error_reply(e.code, e.message, e.request_id if e.request_id is not None else rid)
            )
        except Exception as e:  # a bug of ours must not take the server down: answer and keep serving
            log.exception("unexpected error while handling a request")
            self._send(envelope, error_reply(ErrorCode.INTERNAL, f"{type(e).__name__}: {e}", rid))
        return None

    def _answer(self, kind: str) -> dict[str, Any]:
        if kind == "hello":
            return {"metadata": self.metadata()}
        if kind == "health":
            s = self.stats
            return {
                "health": {
                    "status": "serving",
                    "policy_id": self.spec.policy_id,
                    "uptime_s": time.time() - s.started,
                    "requests": s.requests,
                    "errors": s.errors,
                    "inferences": s.inferences,
                    "batched_calls": s.batched_calls,
                }
            }
        return {"pong": True}

    @staticmethod
    def _finish_timing(timing: dict[str, float], t0: float) -> dict[str, float]:
        timing["server_ms"] = (time.perf_counter() - t0) * 1000
        timing["t_send"] = time.time()
        return timing

    def _infer(self, items: list[_Pending]) -> None:
        if len(items) > 1:
            try:
                self._run_policy(items)
                return
            except RequestError:
                pass  # answer one by one so each client gets its own precise error
        for item in items:
            try:
                self._run_policy([item])
            except RequestError as e:
                self._send(item.envelope, error_reply(e.code, e.message, item.request_id))
            except Exception as e:  # e.g. a reply that cannot be encoded
                log.exception("unexpected error while answering request %s", item.request_id)
                self._send(item.envelope, error_reply(ErrorCode.INTERNAL, f"{type(e).__name__}: {e}", item.request_id))

    def _run_policy(self, items: list[_Pending]) -> None:
        obs = items[0].obs if len(items) == 1 else _stack([it.obs for it in items], self.spec.image_shapes)
        total = sum(it.batch for it in items)
        t_inf = time.perf_counter()
        try:
            chunk = self.policy.predict_chunk(obs)
        except Exception as e:
            log.exception("policy %s raised during inference", self.spec.policy_id)
            raise RequestError(ErrorCode.INFERENCE_FAILED, f"{type(e).__name__}: {e}") from None
        infer_ms = (time.perf_counter() - t_inf) * 1000
        try:
            chunk = validate_chunk(self.spec, chunk, total)
        except ProtocolError as e:
            raise RequestError(ErrorCode.BAD_ACTION, f"policy output refused: {e}") from None
        self.stats.inferences += 1
        self.stats.batched_calls += len(items) > 1
        start = 0
        for it in items:
            part = chunk[start : start + it.batch]
            start += it.batch
            timing = {"t_recv": it.t_recv, "decode_ms": it.decode_ms, "infer_ms": infer_ms, "batch": total}
            reply = ok_reply(
                "infer", it.request_id, it.t_client, self._finish_timing(timing, it.t0), actions=part
            )
            self._send(it.envelope, reply)

    def _refuse_queued(self) -> None:
        while (frames := self._recv(zmq.NOBLOCK)) is not None:
            if len(frames) >= 2:
                self._send(
                    frames[:-1], error_reply(ErrorCode.SHUTTING_DOWN, "server is shutting down; retry later")
                )


def _stack(batches: list[dict[str, Any]], image_shapes: dict) -> dict[str, Any]:
    out: dict[str, Any] = {
        STATE_KEY: np.concatenate([b[STATE_KEY] for b in batches]).astype(np.float32, copy=False),
        TASK_KEY: [t for b in batches for t in b[TASK_KEY]],
    }
    for key in image_shapes:
        out[key] = np.concatenate([b[key] for b in batches])
    return out
