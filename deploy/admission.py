"""Fair serving for the policy server: per-client queues, per-client rate limits, byte-fair order.

The server thread moves every readable message off the socket into this structure (cheap: no decode),
then serves the client that has been served the fewest bytes so far (start-time fair queueing: a client
that becomes active starts at the current virtual time, so idling earns no credit), oldest message
first within a client. A client that floods fills only its own queue (`max_queued_per_client`, then
`busy` replies) and spends only its own token buckets (requests/s and bytes/s, then `rate_limited`
replies); a robot client sending small requests one at a time goes ahead of a client sending big ones,
so it waits for at most the one request being served when it arrives.
Clients are told apart by their CURVE public key when CURVE is on (all connections of one key share
one queue and one budget), else by their ZeroMQ routing identity (one per connection).
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Any

import zmq

from deploy.schema import ErrorCode

MAX_FRAMES = 4  # routing identity + up to 2 envelope frames (REQ adds one empty delimiter) + payload
MAX_ENVELOPE_FRAME_BYTES = 64


@dataclass(frozen=True)
class AdmissionConfig:
    max_queued_per_client: int = 4  # messages waiting per client; more -> `busy`
    max_queued_bytes: int = 64 << 20  # bytes waiting over all clients; more -> `busy`
    rate_hz: float | None = 1000.0  # requests per second per client (token bucket); None = no limit
    rate_burst: int = 100  # requests a client may send at once before `rate_hz` applies
    bytes_per_s: float | None = 128 << 20  # request bytes per second per client; None = no limit
    bytes_burst: int = 32 << 20  # bytes at once (raised to at least one maximal message)

    def __post_init__(self) -> None:
        if self.max_queued_per_client < 1 or self.max_queued_bytes < 1:
            raise ValueError("max_queued_per_client and max_queued_bytes must be >= 1")
        for name in ("rate_hz", "bytes_per_s"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name}={value} must be > 0, or None for no limit")
        if self.rate_burst < 1 or self.bytes_burst < 1:
            raise ValueError("rate_burst and bytes_burst must be >= 1")


class TokenBucket:
    """`rate` tokens per second up to `capacity`; `take(n)` spends n tokens if there are that many."""

    def __init__(self, rate: float, capacity: float, clock=time.monotonic):
        self.rate, self.capacity, self.clock = rate, capacity, clock
        self.tokens, self.t = capacity, clock()

    def take(self, n: float = 1.0) -> bool:
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.t) * self.rate)
        self.t = now
        if self.tokens < n:
            return False
        self.tokens -= n
        return True


@dataclass
class Incoming:
    """One received message waiting to be served."""

    key: bytes  # fairness key: CURVE public key or routing identity
    envelope: list[bytes]  # routing frames to send the reply back with
    payload: Any  # zmq.Frame or bytes
    size: int  # bytes of the whole message

    @property
    def cost(self) -> int:
        """Bytes charged against `max_queued_bytes`: the message plus a fixed per-message overhead."""
        return self.size + 1024

    t_recv: float  # wall clock at receipt
    t0: float  # perf_counter at receipt


class _Client:
    def __init__(self, cfg: AdmissionConfig, max_message_bytes: int):
        self.queue: deque[Incoming] = deque()
        self.requests = TokenBucket(cfg.rate_hz, cfg.rate_burst) if cfg.rate_hz else None
        cap = max(cfg.bytes_burst, max_message_bytes)
        self.bytes = TokenBucket(cfg.bytes_per_s, cap) if cfg.bytes_per_s else None
        self.last_seen = time.monotonic()
        self.vtime = 0.0  # bytes served, on the shared virtual clock


class FairQueue:
    """Per-client FIFO queues served round-robin. `admit` returns None (queued) or why it refused."""

    MAX_CLIENTS = 4096  # idle clients beyond this are forgotten, oldest first

    def __init__(self, cfg: AdmissionConfig, max_message_bytes: int):
        self.cfg = cfg
        self.max_message_bytes = max_message_bytes
        self._clients: OrderedDict[bytes, _Client] = OrderedDict()
        self._ready: dict[bytes, _Client] = {}  # clients with queued messages
        self._vnow = 0.0  # virtual time: the start tag of the message served last
        self.queued_bytes = 0
        self.queued = 0

    def admit(self, item: Incoming) -> ErrorCode | None:
        client = self._clients.get(item.key)
        if client is None:
            client = self._clients[item.key] = _Client(self.cfg, self.max_message_bytes)
            self._forget_idle()
        self._clients.move_to_end(item.key)
        client.last_seen = time.monotonic()
        if (client.requests and not client.requests.take()) or (
            client.bytes and not client.bytes.take(item.size)
        ):
            return ErrorCode.RATE_LIMITED
        if (
            len(client.queue) >= self.cfg.max_queued_per_client
            or self.queued_bytes + item.cost > self.cfg.max_queued_bytes
        ):
            return ErrorCode.BUSY
        if not client.queue:
            client.vtime = max(client.vtime, self._vnow)
            self._ready[item.key] = client
        client.queue.append(item)
        self.queued_bytes += item.cost
        self.queued += 1
        return None

    def pop(self) -> Incoming | None:
        """The oldest message of the client served least so far (ties: the one waiting longest)."""
        if not self._ready:
            return None
        key = min(self._ready, key=lambda k: (self._ready[k].vtime, self._ready[k].queue[0].t0))
        client = self._ready[key]
        item = client.queue.popleft()
        self._vnow = client.vtime
        client.vtime += item.cost
        if not client.queue:
            del self._ready[key]
        self.queued_bytes -= item.cost
        self.queued -= 1
        return item

    def __len__(self) -> int:
        return self.queued

    def _forget_idle(self) -> None:
        while len(self._clients) > self.MAX_CLIENTS:
            key, client = next(iter(self._clients.items()))
            if client.queue:  # never drop queued work; the cap is soft while everyone has some
                break
            del self._clients[key]


@dataclass
class Refused:
    """A message refused on receipt (before queueing): reply `code`/`message` to `envelope`."""

    envelope: list[bytes]
    code: ErrorCode
    message: str


def receive(sock: zmq.Socket, max_message_bytes: int) -> Incoming | Refused | bool | None:
    """Take one message off a ROUTER socket without copying its payload. None: nothing to read; True:
    nothing to answer (no routing identity). The whole message (envelope included) must fit in
    `max_message_bytes`; at most MAX_FRAMES frames, envelope frames <= MAX_ENVELOPE_FRAME_BYTES; frames
    beyond that are dropped on arrival and never echoed back."""
    try:
        first = sock.recv(zmq.NOBLOCK, copy=False)
    except zmq.Again:
        return None
    t_recv, t0 = time.time(), time.perf_counter()
    parts, size, n, more = [first], len(first), 1, first.more
    while more:  # the rest of a message is delivered with its first frame
        frame = sock.recv(copy=False)
        n, size, more = n + 1, size + len(frame), frame.more
        if n < MAX_FRAMES or not more:  # always keep the payload (last frame)
            parts.append(frame)
    if n < 2:
        return True
    identity = first.bytes
    extra = parts[1:-1]
    if n > MAX_FRAMES or any(len(f) > MAX_ENVELOPE_FRAME_BYTES for f in extra):
        return Refused(
            [identity, b""],
            ErrorCode.BAD_REQUEST,
            f"message of {n - 1} frames refused: send [empty delimiter, payload] (REQ or DEALER), at most "
            f"{MAX_FRAMES - 1} frames of which all but the payload <= {MAX_ENVELOPE_FRAME_BYTES} bytes",
        )
    envelope = [identity, *(f.bytes for f in extra)]
    if size > max_message_bytes:
        msg = f"message of {size} bytes exceeds the limit of {max_message_bytes} bytes"
        return Refused(envelope, ErrorCode.TOO_LARGE, msg)
    payload = parts[-1]
    try:
        key = payload.get("User-Id").encode()  # CURVE: the client's public key
    except zmq.ZMQError:
        key = identity
    return Incoming(key, envelope, payload, size, t_recv, t0)
