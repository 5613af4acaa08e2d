"""Parent side of the worker processes: dispatch episodes, batch policy queries, survive crashes and hangs.

Workers are `spawn`ed (no fork of GL contexts). A worker that dies, or runs one episode longer than
`episode_timeout_s`, is killed and replaced; its episode goes back to the front of the queue with
`attempt + 1` and, after `max_attempts`, is recorded as an errored failure. An episode is reported
(`on_record`) exactly once: when its "done" message arrives, never for a killed attempt.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from multiprocessing.connection import wait

import numpy as np

from envs.eval.episodes import Episode
from envs.eval.policies import stack_batches
from envs.eval.worker import WorkerConfig, worker_main
from vla.protocol import validate_batch, validate_chunk


@dataclass
class _Slot:
    proc: mp.Process
    conn: object
    episode: Episode | None = None
    attempt: int = 0
    video: bool = False
    started: float = 0.0
    task_key: tuple | None = None
    waiting_since: float | None = None  # set while its observation waits for the parent policy
    obs: dict | None = None


class WorkerPool:
    def __init__(
        self,
        n_workers: int,
        cfg: WorkerConfig,
        *,
        parent_policy=None,
        episode_timeout_s: float = 900.0,
        max_attempts: int = 3,
        batch_wait_s: float = 0.05,
    ) -> None:
        if n_workers < 1:
            raise ValueError("need at least one worker")
        if (cfg.placement == "parent") != (parent_policy is not None):
            raise ValueError("a parent policy is needed exactly when placement == 'parent'")
        if parent_policy is not None:
            cfg = replace(cfg, parent_spec=parent_policy.spec)
        cfg = replace(cfg, n_workers=n_workers)
        self.cfg, self.policy = cfg, parent_policy
        self.timeout, self.max_attempts, self.batch_wait = episode_timeout_s, max_attempts, batch_wait_s
        self.ctx = mp.get_context("spawn")
        self.slots = [self._start() for _ in range(n_workers)]
        self.restarts = 0
        self.policy_batches: list[int] = []  # batch size of every parent-policy call

    def _start(self) -> _Slot:
        parent, child = self.ctx.Pipe()
        proc = self.ctx.Process(target=worker_main, args=(child, self.cfg), daemon=True)
        proc.start()
        child.close()
        return _Slot(proc, parent)

    # ---------------------------------------------------------------- scheduling
    @staticmethod
    def _pick(queue: deque, task_key) -> tuple:
        """Prefer an episode of the task the worker's env already holds (no rebuild)."""
        for i, item in enumerate(queue):
            if item[0].task_key == task_key:
                del queue[i]
                return item
        return queue.popleft()

    def run(
        self,
        episodes: list[Episode],
        on_record: Callable[[dict], None],
        *,
        video_keys: set[str] = frozenset(),
    ) -> None:
        queue: deque = deque((e, 1) for e in episodes)
        try:
            while queue or any(s.episode for s in self.slots):
                for s in self.slots:
                    if s.episode is None and queue:
                        ep, attempt = self._pick(queue, s.task_key)
                        s.episode, s.attempt, s.started, s.task_key = (
                            ep,
                            attempt,
                            time.monotonic(),
                            ep.task_key,
                        )
                        s.video = ep.key in video_keys
                        s.conn.send({"episode": ep.to_dict(), "attempt": attempt, "video": s.video})
                busy = [s for s in self.slots if s.episode is not None]
                ready = wait([s.conn for s in busy], timeout=0.2)
                for s in busy:
                    if s.conn in ready:
                        self._receive(s, queue, on_record)
                self._serve_policy()
                self._check_health(queue, on_record)
        finally:
            self.close()

    def _receive(self, s: _Slot, queue: deque, on_record) -> None:
        try:
            kind, payload = s.conn.recv()
        except (EOFError, OSError, ConnectionResetError):
            self._retry(s, queue, on_record, f"worker {s.proc.pid} died (exit code {s.proc.exitcode})")
            return
        if kind == "obs":
            s.obs, s.waiting_since = payload, time.monotonic()
        elif kind == "done":
            s.episode = None
            on_record(payload)
        elif kind == "failed":
            self._retry(s, queue, on_record, payload["reason"], restart=False, retry=payload["retry"])

    def _serve_policy(self) -> None:
        waiting = [s for s in self.slots if s.obs is not None]
        if not waiting:
            return
        running = [s for s in self.slots if s.episode is not None]
        oldest = min(s.waiting_since for s in waiting)
        if len(waiting) < len(running) and time.monotonic() - oldest < self.batch_wait:
            return  # others will ask soon: one batched call instead of several
        batches = [s.obs for s in waiting]
        try:
            batch = stack_batches(batches)
            b = validate_batch(self.policy.spec, batch)
            chunk = validate_chunk(self.policy.spec, self.policy.predict_chunk(batch), b)
            self.policy_batches.append(b)
            replies, i = [], 0
            for part in batches:
                n = len(part["task"])
                replies.append(("chunk", np.ascontiguousarray(chunk[i : i + n])))
                i += n
        except Exception as e:  # noqa: BLE001 - reported to each worker; its episode ends as a failure
            replies = [("error", f"{type(e).__name__}: {e}")] * len(waiting)
        for s, reply in zip(waiting, replies):
            s.obs, s.waiting_since = None, None
            with contextlib.suppress(BrokenPipeError, OSError):  # a dead worker is found by the health check
                s.conn.send(reply)

    def _check_health(self, queue: deque, on_record) -> None:
        now = time.monotonic()
        for s in self.slots:
            if s.episode is None:
                continue
            if not s.proc.is_alive():
                self._retry(s, queue, on_record, f"worker {s.proc.pid} died (exit code {s.proc.exitcode})")
            elif s.waiting_since is None and now - s.started > self.timeout:
                self._retry(
                    s,
                    queue,
                    on_record,
                    f"episode timed out after {self.timeout:.0f} s (worker {s.proc.pid} killed)",
                )

    def _retry(
        self, s: _Slot, queue: deque, on_record, reason: str, restart: bool = True, retry: bool = True
    ) -> None:
        ep, attempt = s.episode, s.attempt
        if restart:
            self._kill(s)
            self.slots[self.slots.index(s)] = self._start()
            self.restarts += 1
        else:
            s.episode, s.obs, s.waiting_since = None, None, None
        if ep is None:
            return
        if retry and attempt < self.max_attempts:
            queue.appendleft((ep, attempt + 1))
        else:
            on_record(_error_record(ep, attempt, reason))

    @staticmethod
    def _kill(s: _Slot) -> None:
        if s.proc.is_alive():
            s.proc.kill()
        s.proc.join(timeout=10)
        s.conn.close()

    def close(self) -> None:
        for s in self.slots:
            if s.proc.is_alive():
                with contextlib.suppress(BrokenPipeError, OSError):
                    s.conn.send(None)
        deadline = time.monotonic() + 30
        for s in self.slots:
            s.proc.join(timeout=max(0.1, deadline - time.monotonic()))
            if s.proc.is_alive():
                s.proc.kill()
                s.proc.join(timeout=5)
            s.conn.close()


def _error_record(ep: Episode, attempts: int, reason: str) -> dict:
    from envs.eval.results import SCHEMA_VERSION

    return {
        "schema": SCHEMA_VERSION,
        "key": ep.key,
        **ep.to_dict(),
        "task": "",
        "instruction": "",
        "success": False,
        "steps": 0,
        "queries": 0,
        "seconds": 0.0,
        "attempts": attempts,
        "error": reason.strip()[:2000],
        "video": None,
    }
