"""Policy queries off the control thread, so inference overlaps the execution of the current chunk.

`ChunkRequester.start(batch, step)` hands one observation to a worker thread that runs the query (the
runner's `_infer`: a served policy's client, or a local policy); `poll()` returns its reply once it is there
and never waits; `request()` blocks (the queue ran dry: the loop has nothing left to execute). One request at
a time: while one is in flight only the worker touches the policy (a ZeroMQ socket is not thread-safe).

A `Reply` carries the executor step at which its observation was taken, so the loop can skip the actions it
executed meanwhile (`vla.chunking.ChunkExecutor.push(chunk, age=)`), and its latency, from which the
real-time-chunking delay is estimated. `discard()` marks the request in flight as stale (an error dropped the
queue and stopped the arm): its reply is thrown away when it comes.

While a requester exists, the interpreter's thread switch interval is lowered to `switch_interval_s` (default
0.5 ms; Python's is 5 ms): a policy running in this process (not behind a server) holds the GIL between its torch
calls, and the control thread must not wait for it at every wake-up. `close()` restores the interval.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass
from typing import Any


@dataclass
class Reply:
    step: int  # executor step (actions popped) when the observation was taken
    latency_s: float  # query start to reply
    result: Any = None
    error: BaseException | None = None

    def get(self) -> Any:
        """The query's result; re-raises the query's exception in the caller's thread."""
        if self.error is not None:
            raise self.error
        return self.result


def run_query(query: Callable[[Mapping[str, Any]], Any], batch: Mapping[str, Any], step: int) -> Reply:
    """Run one query now and wrap its result or exception (used inline and on the worker thread)."""
    t0 = time.perf_counter()
    try:
        result = query(batch)
    except Exception as e:  # noqa: BLE001 - delivered to the loop, which handles it like a synchronous error
        return Reply(step, time.perf_counter() - t0, error=e)
    return Reply(step, time.perf_counter() - t0, result)


class ChunkRequester:
    def __init__(self, query: Callable[[Mapping[str, Any]], Any], switch_interval_s: float = 0.0005):
        self._query = query
        self._switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(min(self._switch_interval, switch_interval_s))
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="policy-request")
        self._future: Future[Reply] | None = None
        self._stale = False

    @property
    def busy(self) -> bool:
        """A request is in flight (its reply not yet taken by `poll`/`request`)."""
        return self._future is not None

    def start(self, batch: Mapping[str, Any], step: int) -> None:
        if self._future is not None:
            raise RuntimeError("a policy request is already in flight")
        self._stale = False
        self._future = self._pool.submit(run_query, self._query, batch, step)

    def poll(self) -> Reply | None:
        """The reply if the request in flight has finished, else None (also for a discarded request)."""
        if self._future is None or not self._future.done():
            return None
        reply, self._future = self._future.result(), None
        return None if self._stale else reply

    def request(self, batch: Mapping[str, Any], step: int) -> Reply:
        """Blocking: the reply of the request in flight, or (none, or a discarded one) of a new one."""
        if self._future is not None:
            wait_futures([self._future])
            reply = self.poll()
            if reply is not None:
                return reply
        self.start(batch, step)
        wait_futures([self._future])
        return self.poll()

    def discard(self) -> None:
        """Throw away the reply of the request in flight (if any) when it comes."""
        self._stale = self._future is not None

    def close(self) -> None:
        """Wait for a request in flight (bounded by the query's own deadline), then end the worker."""
        self._pool.shutdown(wait=True)
        self._future = None
        sys.setswitchinterval(self._switch_interval)
