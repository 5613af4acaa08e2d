"""The robot loop against the pure-Python fake arm and a loopback policy server."""

import threading

import numpy as np
import pytest
from conftest import AdversarialPolicy, FaultyPolicy, sim_cameras

from deploy.backends.fake import FakeBackend
from deploy.client import PolicyClient
from deploy.droid import FR3_Q_MAX, FR3_Q_MIN, RESET_JOINTS, droid_spec
from deploy.pacing import RateClock
from deploy.policies import DroidHoldStillPolicy as HoldStillPolicy
from deploy.policies import ScriptedWavePolicy
from deploy.runner import LoopConfig, RobotRunner
from deploy.safety import SafetyConfig


def make_runner(endpoint, backend=None, **loop):
    loop.setdefault("request_timeout_s", 0.5)
    loop.setdefault("max_steps", 24)
    loop.setdefault("dry_run", False)  # LoopConfig is dry-run by default; these tests drive the fake arm
    client = PolicyClient(endpoint, timeout_s=0.5, retries=1)
    runner = RobotRunner(backend or FakeBackend(), client, sim_cameras(), SafetyConfig(), LoopConfig(**loop))
    return runner, client


def test_loop_queries_every_open_loop_horizon_and_commands_each_step(serve):
    server = serve(ScriptedWavePolicy())
    backend = FakeBackend()
    steps = []
    runner, client = make_runner(server.endpoint, backend, max_steps=24)
    runner.on_step = lambda rec, prompt: steps.append(rec)
    with client:
        runner.reset()
        res = runner.run_episode("wave")
    assert res.status == "done" and res.steps == 24
    assert res.queries == 3  # 24 steps / 8 per chunk
    assert len(backend.commands) == 24
    assert [r.request_id for r in steps[::8]] == sorted({r.request_id for r in steps})
    cap = SafetyConfig().speed_cap
    for _, v, hold in backend.commands:
        assert np.all(np.abs(v) <= cap + 1e-9) and hold == SafetyConfig().hold_s
    # the wave's gripper toggles every 4 queries -> with 3 queries it stays open
    assert backend.gripper_commands == [False]  # only the reset's open
    assert steps[0].images[next(iter(steps[0].images))].shape == (224, 224, 3)
    assert backend.stops >= 1  # arm halted at the end of the episode


def test_adversarial_policy_never_drives_fake_arm_past_limits(serve):
    server = serve(AdversarialPolicy(seed=3, nan_every=4))
    # start 0.25 rad from the limit each joint is first pushed toward
    push_up = np.arange(7) % 2 == 0
    q0 = np.where(push_up, FR3_Q_MAX - 0.25, FR3_Q_MIN + 0.25)
    backend = FakeBackend(q0=q0, accel=SafetyConfig().decel)
    q_seen = []
    runner, client = make_runner(server.endpoint, backend, max_steps=40, max_consecutive_rejects=100)
    runner.on_step = lambda rec, prompt: q_seen.append(rec.state.q)
    with client:
        res = runner.run_episode("break things")
    q = np.array(q_seen + [backend.read_state().q])
    assert res.status == "done" and res.remote_errors >= 1  # NaN chunks refused (by the server)
    assert res.flags.get("rescaled", 0) > 0 and res.flags.get("position_clamped", 0) > 0
    half = SafetyConfig().margin / 2
    assert np.all(q >= FR3_Q_MIN + half - 1e-6) and np.all(q <= FR3_Q_MAX - half + 1e-6)
    # it really pushed: every joint reached the margin band at some point
    gap = np.where(push_up, FR3_Q_MAX - q, q - FR3_Q_MIN).min(0)
    assert np.all(gap < SafetyConfig().margin + 0.02)


def test_nan_chunks_stop_the_arm_and_persistent_errors_end_the_episode(serve):
    server = serve(FaultyPolicy("nan"))
    backend = FakeBackend()
    runner, client = make_runner(server.endpoint, backend, max_consecutive_rejects=3)
    with client:
        res = runner.run_episode("x")
    assert res.status == "policy_errors" and res.remote_errors == 3
    assert backend.commands == [] and backend.stops >= 3


def test_dry_run_never_moves_the_arm(serve):
    server = serve(ScriptedWavePolicy())
    backend = FakeBackend()
    runner, client = make_runner(server.endpoint, backend, dry_run=True, max_steps=10)
    with client:
        runner.reset()
        res = runner.run_episode("x")
    assert res.status == "done" and res.steps == 10
    assert backend.commands == [] and backend.gripper_commands == []
    np.testing.assert_allclose(backend.read_state().q, RESET_JOINTS)


def test_server_loss_stops_arm_then_loop_resumes_after_restart(serve):
    server = serve(HoldStillPolicy())
    endpoint = server.endpoint
    backend = FakeBackend()
    runner, client = make_runner(endpoint, backend, max_steps=40, request_timeout_s=0.2, max_server_wait_s=10)
    restarted = threading.Event()

    def on_step(rec, prompt):
        if len(backend.commands) == 10 and not restarted.is_set():
            server.stop()
            threading.Timer(1.0, lambda: (serve(HoldStillPolicy(), bind=endpoint), restarted.set())).start()

    runner.on_step = on_step
    with client:
        res = runner.run_episode("x")
    assert restarted.is_set()
    assert res.status == "done" and res.steps == 40 and res.server_outages == 1
    assert backend.stops >= 1


def test_server_lost_for_too_long_ends_episode(serve):
    server = serve(HoldStillPolicy())
    runner, client = make_runner(server.endpoint, max_steps=50, request_timeout_s=0.1, max_server_wait_s=0.3)
    runner.connect()
    server.stop()
    with client:
        res = runner.run_episode("x")
    assert res.status == "server_lost" and "no reply" in res.message


def test_robot_fault_stops_or_recovers(serve):
    server = serve(HoldStillPolicy())
    backend = FakeBackend()
    backend.fault_on_command = 5
    runner, client = make_runner(server.endpoint, backend, max_steps=20)
    with client:
        res = runner.run_episode("x")
    assert res.status == "robot_fault" and res.steps == 5 and "reflex" in res.message
    backend2 = FakeBackend()
    backend2.fault_on_command = 5
    runner2, client2 = make_runner(server.endpoint, backend2, max_steps=20, auto_recover=True)
    with client2:
        res2 = runner2.run_episode("x")
    assert res2.status == "done" and res2.faults == 1 and backend2.recoveries == 1


def test_runner_refuses_non_droid_policy(serve):
    class Libero(HoldStillPolicy):
        def __init__(self):
            super().__init__()
            import dataclasses

            self.spec = dataclasses.replace(droid_spec("x"), action_space="libero_osc_delta")

    server = serve(Libero())
    runner, client = make_runner(server.endpoint)
    with client, pytest.raises(ValueError, match="action_space"):
        runner.connect()


def test_rate_clock_keeps_grid_without_drift():
    import time

    clock = RateClock(200.0)  # 5 ms period keeps the test short
    t0 = time.perf_counter()
    late = []
    for k in range(60):
        if k == 30:
            time.sleep(0.012)  # an overrun of > 2 periods
        late.append(clock.wait())
    elapsed = time.perf_counter() - t0
    assert clock.missed >= 1
    # on a grid: the end time is a whole number of periods from the start, not 60 + overrun
    assert elapsed == pytest.approx((60 + clock.missed) * 0.005, abs=0.004)
