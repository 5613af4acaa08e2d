"""Pause-free execution: overlapping chunks in the executor, background requests in the robot loop (fake arm,
150 ms of injected inference latency), the pending actions sent for real-time chunking, and config checks."""

import importlib
import sys

import numpy as np
import pytest
from conftest import sim_cameras

from deploy.backends.fake import FakeBackend
from deploy.delayed import DelayedPolicy
from deploy.droid import droid_spec
from deploy.runner import LoopConfig, RobotRunner
from deploy.safety import SafetyConfig
from vla.chunking import AGGREGATES, ChunkExecutor, merge_chunks
from vla.protocol import PENDING_ACTIONS_KEY, PENDING_DELAY_KEY, validate_batch

PERIOD = 1 / 15
LATENCY = 0.15


def _chunk(values, dim: int = 2) -> np.ndarray:
    return np.asarray(values, np.float32)[:, None] * np.ones((1, dim), np.float32)


# ---------------------------------------------------------------- executor and merge functions
def test_threshold_triggers_a_request_while_actions_remain_and_stale_actions_are_skipped():
    ex = ChunkExecutor(8, chunk_threshold=0.5)  # 16-step chunks: ask again when 8 are left
    assert ex.wants_query() and ex.needs_query()
    ex.push(_chunk(range(16)))
    for _ in range(7):
        ex.pop()
    assert not ex.wants_query() and ex.remaining == 9
    ex.pop()
    assert ex.wants_query() and not ex.needs_query() and ex.remaining == 8 and ex.steps == 8
    np.testing.assert_array_equal(ex.pending()[:, 0], np.arange(8, 16))
    # the reply to a request made at step 8 arrives 3 steps later: its first 3 actions are stale
    for _ in range(3):
        ex.pop()
    ex.push(_chunk(100 + np.arange(16)), age=3)
    assert ex.remaining == 13 and ex.pop()[0] == 103  # replace: the new chunk from step 11 on
    ex.push(_chunk(np.arange(16)), age=16)  # every action stale: the plan is kept
    assert ex.remaining == 12 and ex.pop()[0] == 104
    with pytest.raises(ValueError, match="overlapping"):
        ChunkExecutor(8).push(_chunk(range(16)), age=2)


def test_default_executor_is_unchanged_by_the_overlap_mode():
    ex = ChunkExecutor(3)
    ex.push(_chunk(range(5)))
    assert [ex.pop()[0] for _ in range(3)] == [0, 1, 2] and ex.needs_query() and ex.wants_query()


@pytest.mark.parametrize("aggregate, w_new", sorted(AGGREGATES.items()))
def test_merge_functions_blend_only_the_overlap(aggregate, w_new):
    queued, fresh = _chunk([10, 10, 10]), _chunk([0, 0, 0, 0, 0])
    out = merge_chunks(queued, fresh, aggregate)
    np.testing.assert_allclose(out[:3, 0], 10 * (1 - w_new))
    np.testing.assert_allclose(out[3:, 0], 0)  # past the queued actions: the fresh chunk only
    assert out.shape == fresh.shape


def test_merge_numbers_and_executor_aggregate():
    np.testing.assert_allclose(
        merge_chunks(_chunk([1.0]), _chunk([2.0, 5.0]), "weighted_average")[:, 0], [1.7, 5]
    )
    ex = ChunkExecutor(4, chunk_threshold=1.0, aggregate="average")
    ex.push(_chunk([0, 2, 4, 6]))
    ex.pop()
    ex.push(_chunk([10, 10, 10, 10]), age=1)  # queued 2, 4, 6 vs fresh 10, 10, 10
    assert [ex.pop()[0] for _ in range(3)] == [6, 7, 8]
    with pytest.raises(ValueError, match="aggregate must be one of"):
        merge_chunks(_chunk([1]), _chunk([1]), "median")


# ---------------------------------------------------------------- the robot loop with injected latency
class StampRunner(RobotRunner):
    """The robot loop with each observation stamped with the executor's step (taken on the loop's thread)."""

    def observe(self, state, prompt):
        batch, images = super().observe(state, prompt)
        batch["test.step"] = np.array([self.executor.steps])
        return batch, images


class StepStampPolicy:
    """DROID chunks whose joint-0 velocity stamps the step they are meant for: 0.001 * (s + i), with s the
    step of the observation (`StampRunner`). Keeps every batch it was asked with."""

    def __init__(self):
        self.spec = droid_spec("step-stamp", 16, 8)
        self.batches: list[dict] = []

    def reset(self) -> None:
        pass

    def predict_chunk(self, batch):
        b = validate_batch(self.spec, batch)
        self.batches.append(dict(batch))
        chunk = np.zeros((b, 16, 8), np.float32)
        chunk[..., 0] = 0.001 * (int(batch["test.step"][0]) + np.arange(16))
        return chunk


def _run(steps: int = 30, **loop):
    records: list = []
    policy = StepStampPolicy()
    slow = DelayedPolicy(policy, LATENCY)
    backend = FakeBackend()
    cfg = LoopConfig(max_steps=steps, dry_run=False, **loop)
    runner = StampRunner(
        backend, slow, _cameras(), SafetyConfig(), cfg, on_step=lambda r, p: records.append(r)
    )
    res = runner.run_episode("x")
    stamps = np.round(np.array([r.action[0] for r in records]) * 1000).astype(int)
    gaps = np.diff([t for t, _, _ in backend.commands])
    return res, policy, slow, stamps, gaps


def _cameras():
    return sim_cameras()  # imported at collection: at run time `conftest` may name another folder's


def test_with_latency_the_async_loop_commands_every_period_and_sync_pauses():
    res_a, _, slow_a, stamps_a, gaps_a = _run(chunk_threshold=0.5)
    res_s, _, slow_s, stamps_s, gaps_s = _run()
    print(
        f"max gap between commands: async {1000 * gaps_a.max():.0f} ms, sync {1000 * gaps_s.max():.0f} ms; "
        f"latency {1000 * np.median(slow_a.latencies_s):.0f} ms"
    )
    assert res_a.status == res_s.status == "done" and len(gaps_a) == len(gaps_s) == 29
    # every executed action is the one planned for its step: nothing skipped, nothing repeated
    np.testing.assert_array_equal(stamps_a, np.arange(30))
    np.testing.assert_array_equal(stamps_s, np.arange(30))
    assert res_a.blocking_queries == 1 and res_a.queries >= 3  # only the first query was waited for
    assert res_s.blocking_queries == res_s.queries == 4
    # Timing, robust to a loaded machine (isolated scheduler stalls hit both loops; the blocking counts above are
    # the exact check): the async loop commands at the period, the synchronous one pauses at every query.
    assert np.median(gaps_a) < PERIOD + 0.035, gaps_a
    assert (gaps_s > LATENCY).sum() >= 3, gaps_s  # queries 2-4 are each a pause of at least the latency


def test_rtc_sends_the_queued_actions_and_the_expected_delay():
    res, policy, slow, stamps, _ = _run(steps=24, chunk_threshold=0.5, rtc=True)
    assert res.status == "done"
    np.testing.assert_array_equal(stamps, np.arange(24))
    first, later = policy.batches[0], policy.batches[1:]
    assert PENDING_ACTIONS_KEY not in first  # nothing queued before the first chunk
    assert later
    for batch in later:
        pending = batch[PENDING_ACTIONS_KEY]
        assert pending.shape == (1, 8, 8) and pending.dtype == np.float32  # threshold 0.5 of 16
        s = int(batch["test.step"][0])  # row 0: the action for the step of this observation
        np.testing.assert_allclose(pending[0, :, 0], 0.001 * (s + np.arange(8)), atol=1e-6)
        delay = int(batch[PENDING_DELAY_KEY][0])
        assert delay >= int(np.ceil(LATENCY * 15)) and delay <= 8  # 150 ms at 15 Hz: 3 steps


class FailOnce(StepStampPolicy):
    def predict_chunk(self, batch):
        if len(self.batches) == 1:
            self.batches.append(batch)
            raise RuntimeError("CUDA out of memory (simulated)")
        return super().predict_chunk(batch)


def test_a_failed_background_request_stops_the_arm_and_the_loop_asks_again():
    backend = FakeBackend()
    cfg = LoopConfig(max_steps=20, dry_run=False, chunk_threshold=0.5)
    runner = StampRunner(backend, DelayedPolicy(FailOnce(), 0.05), _cameras(), SafetyConfig(), cfg)
    res = runner.run_episode("x")
    assert res.status == "done" and res.remote_errors == 1 and backend.stops >= 1
    assert res.blocking_queries == 2  # the first chunk, and the one after the error dropped the queue


# ---------------------------------------------------------------- configuration
@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"chunk_threshold": 0.0}, "chunk_threshold=0.0 must be in (0, 1]"),
        ({"chunk_threshold": 1.5}, "chunk_threshold=1.5 must be in (0, 1]"),
        ({"chunk_threshold": 0.5, "temporal_ensemble": 0.1}, "cannot be used together"),
        ({"chunk_threshold": 0.5, "aggregate": "median"}, "aggregate='median' must be one of replace"),
        ({"rtc": True}, "loop.rtc=true needs loop.chunk_threshold"),
    ],
)
def test_bad_loop_config_is_refused(kwargs, message):
    with pytest.raises(ValueError, match=None) as exc:
        LoopConfig(**kwargs)
    assert message in str(exc.value) and "\n" not in str(exc.value)


@pytest.mark.parametrize(
    "arg, message",
    [
        ("loop.chunk_threshold=2", "chunk_threshold=2.0 must be in (0, 1]"),
        ("loop.aggregate=max", "aggregate"),
    ],
)
def test_robot_cli_refuses_bad_async_keys_with_one_line(monkeypatch, capsys, arg, message):
    module = importlib.import_module("deploy.cli.robot")
    argv = ["pion-robot", "prompt=x", "robot.backend=fake", "policy=hold", "record.enabled=false", arg]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as exc:
        module.main()
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert exc.value.code == 2 and len(lines) == 1 and message in lines[0], lines
