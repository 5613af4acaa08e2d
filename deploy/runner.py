"""The DROID robot loop: observe, query the policy server, execute a chunk open-loop, at 15 Hz.

Per tick: read the arm, and when the shared chunk executor (`vla.chunking.ChunkExecutor`: open loop for
`open_loop_steps` actions, or temporal ensembling) has no action left, read the cameras and query the
policy; filter the next action through `ActionFilter`; send it as a short velocity
command; binarise the gripper; record; sleep to the next deadline.

Pause-free mode (`chunk_threshold`): the next chunk is requested on a worker thread (`deploy.prefetch`) as soon
as the queue falls to that fraction of the chunk, and the loop keeps executing the queue meanwhile; the reply
is merged at the next tick (`aggregate`), its actions for the steps already executed skipped. With `rtc` each
request also carries the queued actions and the expected delay (`vla.protocol.PENDING_ACTIONS_KEY`), so a
flow-matching policy guides its next chunk toward them (real-time chunking). `docs/deploy.md`, "Pause-free
execution".

Failure handling - the arm is stopped first, always:
- server silent (`ServerUnreachable`): stop, keep retrying while holding; resume (after a fresh
  handshake) when it answers; give up after `max_server_wait_s`;
- server error reply or a NaN/inf action: stop, drop the chunk, re-query; give up after
  `max_consecutive_rejects` in a row;
- arm fault (`RobotFault`): stop; recover once per fault if `auto_recover`, else end the episode.
The dead-man does not depend on this code running: each command expires after `hold_s`.

The policy is a `PolicyClient` / a served policy from `vla.policies.load_policy("tcp://...")` (remote:
deadlines, outage handling), or any local `vla.protocol.Policy` (its exceptions count as rejected replies).
A policy that is not a DROID joint-velocity policy for our cameras is refused in `connect()`, before any
step. `LoopConfig()` is safe by default: dry run (commands are logged, nothing moves).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from deploy.backends.base import RobotBackend, RobotFault, RobotState
from deploy.cameras import Camera
from deploy.client import PolicyClient, RemoteError, ServerUnreachable
from deploy.droid import RESET_JOINTS, check_compatible
from deploy.gripper import GripperHysteresis
from deploy.images import preprocess
from deploy.pacing import RateClock
from deploy.prefetch import ChunkRequester, Reply, run_query
from deploy.safety import ActionFilter, JointCommand, SafetyConfig, UnsafeAction
from vla.chunking import AGGREGATES, ChunkExecutor
from vla.protocol import (
    PENDING_ACTIONS_KEY,
    PENDING_DELAY_KEY,
    STATE_KEY,
    TASK_KEY,
    Policy,
    validate_batch,
    validate_chunk,
)

log = logging.getLogger(__name__)


@dataclass
class LoopConfig:
    open_loop_steps: int = 8  # actions of each chunk executed before the next query
    max_steps: int = 600  # steps per episode
    dry_run: bool = True  # SAFE DEFAULT: log every command, move nothing; False moves the arm
    request_timeout_s: float = 1.0  # per attempt; the arm is stopped when no reply comes
    request_retries: int = 1
    max_server_wait_s: float = 30.0  # give up an episode after the server was silent this long
    max_consecutive_rejects: int = 5  # error replies / unsafe actions in a row before giving up
    auto_recover: bool = False  # call the backend's automatic error recovery once per fault
    max_recoveries: int = 3
    reset_timeout_s: float = 10.0
    temporal_ensemble: float | None = None  # k of ACT temporal ensembling (query every step); None = off
    # pause-free execution: request the next chunk in the background once the queued actions fall to this
    # fraction of the chunk (lerobot's chunk_size_threshold); None = wait for the queue to run out (no overlap)
    chunk_threshold: float | None = None
    aggregate: str = "replace"  # merge of a new chunk with the queued actions it overlaps: see AGGREGATES
    rtc: bool = False  # send the queued actions with each request (real-time chunking); needs chunk_threshold
    reset_joints: tuple[float, ...] = tuple(float(q) for q in RESET_JOINTS)

    def __post_init__(self) -> None:
        if self.open_loop_steps < 1 or self.max_steps < 1:
            raise ValueError("open_loop_steps and max_steps must be >= 1")
        if self.request_timeout_s <= 0 or self.request_retries < 1:
            raise ValueError("request_timeout_s must be > 0 and request_retries >= 1")
        if self.chunk_threshold is not None and not 0 < self.chunk_threshold <= 1:
            raise ValueError(f"loop.chunk_threshold={self.chunk_threshold} must be in (0, 1] or null (off)")
        if self.chunk_threshold is not None and self.temporal_ensemble is not None:
            raise ValueError("loop.chunk_threshold and loop.temporal_ensemble cannot be used together")
        if self.aggregate not in AGGREGATES:
            raise ValueError(f"loop.aggregate={self.aggregate!r} must be one of {', '.join(AGGREGATES)}")
        if self.rtc and self.chunk_threshold is None:
            raise ValueError(
                "loop.rtc=true needs loop.chunk_threshold (real-time chunking guides overlapping chunks)"
            )


@dataclass
class StepRecord:
    t: float
    state: RobotState
    images: dict[str, np.ndarray]
    action: np.ndarray  # raw policy action (8,)
    command: JointCommand
    gripper_closed: bool
    request_id: int | None
    rtt_ms: float | None
    infer_ms: float | None


@dataclass
class RobotEpisodeResult:
    status: str = "running"  # done | stopped | server_lost | robot_fault | policy_errors
    steps: int = 0
    queries: int = 0
    rejected_actions: int = 0
    remote_errors: int = 0
    server_outages: int = 0
    faults: int = 0
    flags: dict[str, int] = field(default_factory=dict)
    lateness_s: list[float] = field(default_factory=list)
    rtt_ms: list[float] = field(default_factory=list)
    blocking_queries: int = (
        0  # queries the loop had to wait for (synchronous: all; pause-free: the first ones)
    )
    max_command_gap_s: float = 0.0  # longest time between two consecutive commands
    last_command_time: float | None = None
    message: str = ""


Recorder = Callable[[StepRecord, str], None]


class RobotRunner:
    def __init__(
        self,
        backend: RobotBackend,
        policy: PolicyClient | Policy,
        cameras: Mapping[str, Camera],
        safety: SafetyConfig,
        cfg: LoopConfig,
        *,
        flange_position: Callable[[np.ndarray], np.ndarray] | None = None,
        on_step: Recorder | None = None,
    ):
        self.backend = backend
        self.policy = policy
        self.client: PolicyClient | None = (
            policy if isinstance(policy, PolicyClient) else getattr(policy, "client", None)
        )
        self.executor = ChunkExecutor(
            cfg.open_loop_steps, cfg.temporal_ensemble, cfg.chunk_threshold, cfg.aggregate
        )
        self._requester: ChunkRequester | None = None
        self._latency_s: deque[float] = deque(maxlen=5)  # recent query latencies: the RTC delay estimate
        self._local_ids = 0
        self.cameras = dict(cameras)  # spec image key -> camera
        self.safety = safety
        self.cfg = cfg
        self.filter = ActionFilter(safety, flange_position)
        self.gripper = GripperHysteresis()
        self.on_step = on_step
        self.spec = None
        self._stop = threading.Event()

    # ---------------------------------------------------------------- setup
    def connect(self) -> dict[str, Any]:
        """Handshake and refuse a policy that is not a DROID joint-velocity policy with our cameras."""
        if self.client is not None:
            meta = self.client.hello(timeout_s=self.cfg.request_timeout_s, retries=self.cfg.request_retries)
            spec = self.client.spec
        else:
            spec = self.policy.spec
            meta = {"policy": spec.to_dict()}
        check_compatible(spec, self.cfg.open_loop_steps)
        missing = set(spec.image_shapes) - set(self.cameras)
        if missing:
            raise ValueError(
                f"policy needs images {sorted(missing)}; configured cameras: {sorted(self.cameras)}"
            )
        self.spec = spec
        return meta

    def request_stop(self) -> None:
        """Ask the loop to end the episode at the next tick (safe from a signal handler)."""
        self._stop.set()

    def reset(self) -> None:
        """Open the gripper, then move to the reset pose (logged only in dry-run)."""
        self.gripper.reset(False)
        if self.cfg.dry_run:
            log.info(
                "[dry-run] would open gripper and move to reset pose %s", np.round(self.cfg.reset_joints, 3)
            )
            return
        self.backend.set_gripper(False)
        self.backend.move_to(np.asarray(self.cfg.reset_joints), self.cfg.reset_timeout_s)

    # ---------------------------------------------------------------- loop
    def observe(self, state: RobotState, prompt: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        size = next(iter(self.spec.image_shapes.values()))[0]
        images = {key: preprocess(self.cameras[key].read(), size) for key in self.spec.image_shapes}
        batch: dict[str, Any] = {k: v[None] for k, v in images.items()}
        batch[STATE_KEY] = np.concatenate([state.q, [state.gripper]]).astype(np.float32)[None]
        batch[TASK_KEY] = [prompt]
        return batch, images

    def _halt(self) -> None:
        if not self.cfg.dry_run:
            try:
                self.backend.stop()
            except RobotFault as e:
                log.error("stop failed: %s", e)

    def _infer(self, batch: dict[str, Any]) -> tuple[np.ndarray, int, float, float | None]:
        """One query: (chunk (B, T, A), request id, round trip ms, inference ms)."""
        if self.client is not None:
            out = self.client.infer(
                batch, timeout_s=self.cfg.request_timeout_s, retries=self.cfg.request_retries
            )
            return out.actions, out.request_id, out.rtt_ms, out.server_timing.get("infer_ms")
        t0 = time.perf_counter()
        self._local_ids += 1
        try:
            b = validate_batch(self.spec, batch)
            chunk = validate_chunk(self.spec, self.policy.predict_chunk(batch), b)
        except Exception as e:  # noqa: BLE001 - a local policy failure is handled like a server error reply
            raise RemoteError("policy_error", f"{type(e).__name__}: {e}") from e
        ms = (time.perf_counter() - t0) * 1000
        return chunk, self._local_ids, ms, ms

    def _query(self, batch: dict[str, Any], res: RobotEpisodeResult) -> Reply:
        """Blocking query (the queue is empty): inline, or through the worker when chunks overlap."""
        res.blocking_queries += 1
        if self._requester is None:
            return run_query(self._infer, batch, self.executor.steps)
        return self._requester.request(self._with_pending(batch), self.executor.steps)

    def _with_pending(self, batch: dict[str, Any]) -> dict[str, Any]:
        """With `rtc`: the batch plus the queued actions and the expected inference delay in steps."""
        pending = self.executor.pending()
        if not self.cfg.rtc or not len(pending):
            return batch
        latency = max(self._latency_s, default=0.0)
        delay = min(len(pending), math.ceil(latency * self.safety.control_hz))
        return {**batch, PENDING_ACTIONS_KEY: pending[None], PENDING_DELAY_KEY: np.array([delay], np.int64)}

    def _drop_plan(self) -> None:
        """Discard the queued actions and the reply of any request in flight (after an error)."""
        self.executor.drop()
        if self._requester is not None:
            self._requester.discard()

    def run_episode(self, prompt: str) -> RobotEpisodeResult:
        if self.spec is None:
            self.connect()
        cfg, res = self.cfg, RobotEpisodeResult()
        self._stop.clear()
        executor = self.executor
        executor.reset()
        self._latency_s.clear()
        self._requester = ChunkRequester(self._infer) if executor.overlapping else None
        if self.client is None:
            self.policy.reset()
        meta: tuple[int | None, float | None, float | None] = (None, None, None)
        outage_since: float | None = None
        rejects = 0
        clock = RateClock(self.safety.control_hz)
        try:
            while res.steps < cfg.max_steps:
                if self._stop.is_set():
                    res.status = "stopped"
                    break
                state = self.backend.read_state()
                batch, images = self.observe(state, prompt)
                reply = self._requester.poll() if self._requester is not None else None
                if reply is None and executor.needs_query():
                    reply = self._query(batch, res)
                if reply is not None:
                    try:
                        actions, request_id, rtt_ms, infer_ms = reply.get()
                    except ServerUnreachable as e:
                        self._halt()
                        self._drop_plan()
                        now = time.monotonic()
                        if outage_since is None:
                            outage_since = now
                            res.server_outages += 1
                            log.error("%s; arm stopped, retrying", e)
                        if now - outage_since > cfg.max_server_wait_s:
                            res.status, res.message = "server_lost", str(e)
                            break
                        clock.restart()
                        continue
                    except RemoteError as e:
                        res.remote_errors += 1
                        rejects += 1
                        if self._reject(res, e, rejects, "%s"):
                            break
                        clock.wait()
                        continue
                    if outage_since is not None:
                        log.warning(
                            "server back after %.1f s; re-checking the policy",
                            time.monotonic() - outage_since,
                        )
                        outage_since = None
                        self.connect()
                    self._latency_s.append(reply.latency_s)
                    executor.push(actions[0], age=executor.steps - reply.step)
                    meta = (request_id, rtt_ms, infer_ms)
                    res.queries += 1
                    res.rtt_ms.append(rtt_ms)
                    if executor.needs_query():  # the whole chunk was stale: ask again at once
                        continue
                if self._requester is not None and not self._requester.busy and executor.wants_query():
                    self._requester.start(self._with_pending(batch), executor.steps)
                action = executor.pop()
                try:
                    cmd = self.filter(action, state.q, state.dq)
                except UnsafeAction as e:
                    res.rejected_actions += 1
                    rejects += 1
                    if self._reject(res, e, rejects, "action rejected, arm held: %s"):
                        break
                    clock.wait()
                    continue
                rejects = 0
                for f in cmd.flags:
                    res.flags[f] = res.flags.get(f, 0) + 1
                switch = self.gripper.update(cmd.gripper, time.monotonic())
                try:
                    self._execute(cmd, switch)
                except RobotFault as e:
                    self._halt()
                    res.faults += 1
                    self._drop_plan()
                    if cfg.auto_recover and res.faults <= cfg.max_recoveries:
                        log.error("arm fault: %s; recovering and re-querying", e)
                        self.backend.recover()
                        clock.restart()
                        continue
                    res.status, res.message = "robot_fault", str(e)
                    break
                now = time.monotonic()
                if res.last_command_time is not None:
                    res.max_command_gap_s = max(res.max_command_gap_s, now - res.last_command_time)
                res.last_command_time = now
                if self.on_step is not None:
                    self.on_step(
                        StepRecord(
                            time.time(), state, images, np.asarray(action), cmd, self.gripper.closed, *meta
                        ),
                        prompt,
                    )
                res.steps += 1
                res.lateness_s.append(clock.wait())
            else:
                res.status = "done"
        finally:
            self._halt()
            if self._requester is not None:
                self._requester.close()
                self._requester = None
        return res

    def _reject(self, res: RobotEpisodeResult, error: Exception, rejects: int, message: str) -> bool:
        """Hold the arm and drop the queued actions after a refused reply or action; True: give up."""
        self._halt()
        self._drop_plan()
        log.error(message, error)
        if rejects >= self.cfg.max_consecutive_rejects:
            res.status, res.message = "policy_errors", str(error)
            return True
        return False

    def _execute(self, cmd: JointCommand, gripper_switch: bool | None) -> None:
        if self.cfg.dry_run:
            log.info(
                "[dry-run] velocity %s target %s flags %s%s",
                np.round(cmd.velocity, 4),
                np.round(cmd.target, 4),
                cmd.flags,
                "" if gripper_switch is None else f" gripper -> {'close' if gripper_switch else 'open'}",
            )
            return
        self.backend.command_velocity(cmd.velocity, self.safety.hold_s)
        if gripper_switch is not None:
            self.backend.set_gripper(gripper_switch)
