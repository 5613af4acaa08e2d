"""ZeroMQ ROUTER server that serves any `vla.protocol.Policy` to many clients, hostile ones included.

One thread owns the socket. It moves every readable message into per-client queues (`admission`), then
serves the clients round-robin, oldest message first: each request is decoded (object count bounded),
checked against the schema and the policy spec, and answered. Any fault (bad bytes, bad version, bad
shapes, NaN/inf before or after the float32 cast, a raising policy, a bad chunk, batched or not) becomes
a structured error reply and the server keeps serving. Queued `infer` requests of different clients can
be stacked into one `predict_chunk` call (`max_batch` > 1).

Memory bounds: a whole message (envelope + payload) <= `max_message_bytes`, at most `MAX_FRAMES` frames
with envelope frames <= `MAX_ENVELOPE_FRAME_BYTES` (see `admission.receive`) (never echoed back beyond that), per-client receive
and send queues bounded (RCVHWM / SNDHWM), error replies quote peer input only through `schema.brief`,
and an RSS budget (`memguard`) for what libzmq buffers before a message is complete.
Shutdown: `stop()` returns within ~0.2 s plus the inference in hand, however hard clients flood.
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
from deploy.admission import AdmissionConfig, FairQueue, Incoming, Refused, receive
from deploy.curve import CurveServerKeys, start_authenticator
from deploy.memguard import MemoryBudget, MemoryGuard
from deploy.schema import (
    PROTOCOL_NAME,
    SCHEMA_VERSION,
    ErrorCode,
    RequestError,
    error_reply,
    ok_reply,
    parse_request,
)
from vla.policies import stack_batches
from vla.protocol import STATE_KEY, TASK_KEY, Policy, ProtocolError, validate_batch, validate_chunk

log = logging.getLogger(__name__)

PULL_PER_TURN = 64  # messages moved off the socket between two served requests
SHUTDOWN_DRAIN_S = 0.05  # time spent telling queued clients "shutting_down" before closing


@dataclass
class ServerStats:
    started: float = field(default_factory=time.time)
    requests: int = 0
    errors: int = 0
    inferences: int = 0
    batched_calls: int = 0
    busy: int = 0
    rate_limited: int = 0
    memory_purges: int = 0


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
        admission: AdmissionConfig | None = None,
        memory: MemoryBudget | None = None,
        max_objects: int = codec.MAX_OBJECTS,
        send_hwm: int = 16,
    ):
        if not isinstance(policy, Policy):
            raise TypeError(
                f"{type(policy).__name__} does not implement vla.protocol.Policy (spec, reset, predict_chunk)"
            )
        if max_batch < 1:
            raise ValueError("max_batch must be >= 1")
        if max_message_bytes < 1024 or send_hwm < 1 or max_objects < 64:
            raise ValueError("need max_message_bytes >= 1024, send_hwm >= 1 and max_objects >= 64")
        self.policy = policy
        self.spec = policy.spec
        self.max_message_bytes = int(max_message_bytes)
        self.max_batch = int(max_batch)
        self.max_objects = int(max_objects)
        self.batch_window_s = batch_window_ms / 1000.0
        self.admission = admission or AdmissionConfig()
        self.send_hwm = int(send_hwm)
        self.stats = ServerStats()
        self.queue = FairQueue(self.admission, self.max_message_bytes)
        self._curve = curve
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ctx = zmq.Context()
        self._auth = start_authenticator(self._ctx, curve) if curve is not None else None
        try:
            self._sock = self._socket()
            self._sock.bind(bind)
        except zmq.ZMQError as e:
            self._close_sockets()
            raise OSError(f"cannot bind policy server to {bind}: {e}") from e
        self.endpoint: str = self._sock.getsockopt_string(zmq.LAST_ENDPOINT)
        self.memory = MemoryGuard(memory or MemoryBudget())
        self._poll_ms = max(1, int(self.memory.budget.check_interval_s * 1000))

    def _socket(self) -> zmq.Socket:
        sock = self._ctx.socket(zmq.ROUTER)
        sock.setsockopt(zmq.LINGER, 50)
        sock.setsockopt(zmq.ROUTER_HANDOVER, 1)  # a reconnecting client with the same identity wins
        # Per frame: a peer sending far more than the limit is disconnected before we allocate it; the
        # slack lets a moderately oversized message still get a `too_large` reply.
        sock.setsockopt(zmq.MAXMSGSIZE, 2 * self.max_message_bytes + 4096)
        sock.setsockopt(zmq.RCVHWM, self.admission.max_queued_per_client)  # complete messages per peer
        sock.setsockopt(zmq.SNDHWM, self.send_hwm)  # replies per peer; beyond that ROUTER drops them
        if self._curve is not None:
            self._curve.apply(sock)
        return sock

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
            "max_objects": self.max_objects,
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
        try:
            while not self._stop.is_set():
                if not len(self.queue):
                    self._sock.poll(self._poll_ms)
                self._pull()
                if self.memory.over():
                    self._purge_connections()
                    continue
                if len(self.queue) and not self._stop.is_set():
                    self._serve_next()
            self._refuse_queued()
        finally:
            self._close_sockets()
            log.info("policy server on %s stopped", self.endpoint)

    def _close_sockets(self) -> None:
        if getattr(self, "_sock", None) is not None:
            self._sock.close(linger=50)
        if self._auth is not None:
            self._auth.stop()
        self._ctx.term()

    def _purge_connections(self) -> None:
        """Over the memory budget: drop every connection (and what libzmq buffered for it), rebind."""
        self.stats.memory_purges += 1
        self.queue = FairQueue(self.admission, self.max_message_bytes)
        self.memory.purge(self._sock, self.endpoint)

    # ---------------------------------------------------------------- receiving
    def _recv_message(self) -> Incoming | None | bool:
        """One message off the socket: an Incoming to queue, True if it was answered here, None if none."""
        got = receive(self._sock, self.max_message_bytes)
        if isinstance(got, Refused):
            self.stats.requests += 1
            self._send(got.envelope, error_reply(got.code, got.message))
            return True
        if isinstance(got, Incoming):
            self.stats.requests += 1
        return got

    def _pull(self) -> None:
        """Move up to PULL_PER_TURN readable messages into the per-client queues (no decoding)."""
        for _ in range(PULL_PER_TURN):
            if self._stop.is_set():
                return
            item = self._recv_message()
            if item is None:
                return
            if item is True:
                continue
            refused = self.queue.admit(item)
            if refused is ErrorCode.BUSY:
                self.stats.busy += 1
                msg = f"this client already has {self.admission.max_queued_per_client} requests queued"
                self._send(item.envelope, error_reply(refused, msg + "; wait for the replies"))
            elif refused is ErrorCode.RATE_LIMITED:
                self.stats.rate_limited += 1
                msg = (
                    f"per-client limit {self.admission.rate_hz} requests/s, {self.admission.bytes_per_s} B/s"
                )
                self._send(item.envelope, error_reply(refused, msg))

    def _send(self, envelope: list[bytes], reply: dict[str, Any]) -> None:
        try:
            self._sock.send_multipart([*envelope, codec.encode(reply)], zmq.NOBLOCK)
        except zmq.ZMQError as e:  # peer gone or its queue full: drop this reply, keep serving
            log.warning("could not send reply: %s", e)
        if not reply.get("ok"):
            self.stats.errors += 1

    # ---------------------------------------------------------------- serving
    def _serve_next(self) -> None:
        """Serve the next client in turn; stack queued `infer` requests of others up to max_batch."""
        first = self._handle(self.queue.pop())
        if first is None:
            return
        batch = [first]
        deadline = time.perf_counter() + self.batch_window_s
        while len(batch) < self.max_batch and not self._stop.is_set():
            item = self.queue.pop()
            if item is None:
                left = deadline - time.perf_counter()
                if left <= 0:
                    break
                self._sock.poll(max(1, int(left * 1000)))
                self._pull()
                continue
            pending = self._handle(item)
            if pending is not None:
                batch.append(pending)
        self._infer(batch)

    def _handle(self, item: Incoming) -> _Pending | None:
        """Decode and check one request; answer it unless it is an `infer` to run (returned)."""
        rid = None
        try:
            try:
                msg = codec.decode(item.payload.buffer, self.max_message_bytes, self.max_objects)
            except codec.DecodeError as e:
                raise RequestError(ErrorCode.MALFORMED, str(e)) from None
            finally:
                item.payload = None  # drop the frame now: its bytes were copied into `msg`
            kind, rid, t_client = parse_request(msg)
            decode_ms = (time.perf_counter() - item.t0) * 1000
            if kind == "infer":
                obs = self._check_observation(msg["obs"], rid)
                b = len(obs[TASK_KEY])
                return _Pending(item.envelope, rid, t_client, item.t_recv, item.t0, decode_ms, obs, b)
            timing = {"t_recv": item.t_recv, "decode_ms": decode_ms}
            reply = ok_reply(kind, rid, t_client, self._finish_timing(timing, item.t0), **self._answer(kind))
            self._send(item.envelope, reply)
        except RequestError as e:
            self._send(
                item.envelope,
                error_reply(e.code, e.message, e.request_id if e.request_id is not None else rid),
            )
        except Exception as e:  # a bug of ours must not take the server down: answer and keep serving
            log.exception("unexpected error while handling a request")
            self._send(item.envelope, error_reply(ErrorCode.INTERNAL, f"{type(e).__name__}: {e}", rid))
        return None

    def _check_observation(self, obs: dict[str, Any], rid: Any) -> dict[str, Any]:
        if not isinstance(obs.get(TASK_KEY), list):
            raise RequestError(
                ErrorCode.BAD_OBSERVATION,
                f"{TASK_KEY!r} must be a list of B strings (one instruction per batch row)",
                rid,
            )
        try:
            validate_batch(self.spec, obs)
        except (ProtocolError, TypeError, ValueError) as e:
            raise RequestError(ErrorCode.BAD_OBSERVATION, str(e), rid) from None
        # The policy sees float32: check finiteness after the cast (float64 1e308 becomes inf).
        with np.errstate(over="ignore"):
            state = obs[STATE_KEY].astype(np.float32)
        if not np.all(np.isfinite(state)):
            raise RequestError(
                ErrorCode.BAD_OBSERVATION,
                f"{STATE_KEY} is not finite as float32 (values beyond +-3.4e38 overflow to inf)",
                rid,
            )
        obs[STATE_KEY] = state
        return obs

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
                    "busy": s.busy,
                    "rate_limited": s.rate_limited,
                    "memory_purges": s.memory_purges,
                }
            }
        return {"pong": True}

    @staticmethod
    def _finish_timing(timing: dict[str, float], t0: float) -> dict[str, float]:
        timing["server_ms"] = (time.perf_counter() - t0) * 1000
        timing["t_send"] = time.time()
        return timing

    def _infer(self, items: list[_Pending]) -> None:
        """Run the policy; every failure becomes an error reply to each request involved."""
        if len(items) > 1:
            try:
                self._run_policy(items)
                return
            except RequestError:
                pass  # answer one by one so each client gets its own precise error
            except Exception as e:  # e.g. stacking failed: never let it end serve_forever
                log.exception("batched inference failed")
                for it in items:
                    msg = f"batched inference failed: {type(e).__name__}: {e}"
                    self._send(it.envelope, error_reply(ErrorCode.INTERNAL, msg, it.request_id))
                return
        for item in items:
            try:
                self._run_policy([item])
            except RequestError as e:
                self._send(item.envelope, error_reply(e.code, e.message, item.request_id))
            except Exception as e:  # e.g. a reply that cannot be encoded
                log.exception("unexpected error while answering request %s", item.request_id)
                msg = f"{type(e).__name__}: {e}"
                self._send(item.envelope, error_reply(ErrorCode.INTERNAL, msg, item.request_id))

    def _run_policy(self, items: list[_Pending]) -> None:
        obs = (
            items[0].obs
            if len(items) == 1
            else stack_batches([it.obs for it in items], tuple(self.spec.image_shapes))
        )
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
        except Exception as e:  # e.g. a torch tensor that requires grad cannot become an ndarray
            msg = f"policy output is not an array: {type(e).__name__}: {e}"
            raise RequestError(ErrorCode.BAD_ACTION, msg) from None
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
        """Tell queued and arriving clients to retry later, for at most SHUTDOWN_DRAIN_S."""
        reply = error_reply(ErrorCode.SHUTTING_DOWN, "server is shutting down; retry later")
        while (item := self.queue.pop()) is not None:
            self._send(item.envelope, reply)
        end = time.perf_counter() + SHUTDOWN_DRAIN_S
        while time.perf_counter() < end:
            item = self._recv_message()
            if item is None:
                break
            if isinstance(item, Incoming):
                self._send(item.envelope, reply)
