"""End to end: policy server + robot loop + FrankyBackend + franky-sim (a simulated FR3 speaking
libfranka's protocol on a loopback address). One simulator process serves the whole module."""

import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("franky")
pytest.importorskip("franky_sim")

from conftest import AdversarialPolicy, sim_cameras  # noqa: E402

from deploy.backends.franky_backend import FrankaHandGripper, FrankyBackend  # noqa: E402
from deploy.client import PolicyClient  # noqa: E402
from deploy.droid import FR3_Q_MAX, FR3_Q_MIN, RESET_JOINTS  # noqa: E402
from deploy.policies import ScriptedWavePolicy  # noqa: E402
from deploy.runner import LoopConfig, RobotRunner  # noqa: E402
from deploy.safety import SafetyConfig  # noqa: E402

DEADMAN_BOUND_S = 0.2
SLACK_S = 0.1  # shared 2-core machine: scheduling noise on top of the bound


def _sim_binary() -> str:
    exe = Path(sys.executable).with_name("franky-sim")
    return str(exe) if exe.exists() else (shutil.which("franky-sim") or "franky-sim")


def _die_with_parent() -> None:
    """Linux: SIGKILL the simulator if pytest dies without running fixture teardown (e.g. killed by a timeout)."""
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


@pytest.fixture(scope="module")
def sim_host():
    host = f"127.{random.randint(100, 250)}.{os.getpid() % 250}.{random.randint(1, 250)}"
    proc = subprocess.Popen(
        [_sim_binary(), "-s", "mujoco", "--hostname", host],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        preexec_fn=_die_with_parent,
    )
    ready = threading.Event()
    lines: list[str] = []

    def pump():
        for line in proc.stdout:
            lines.append(line)
            if "Connect to the server" in line:
                ready.set()

    threading.Thread(target=pump, daemon=True).start()
    try:
        if not ready.wait(60):
            pytest.fail("franky-sim did not start:\n" + "".join(lines[-20:]))
        yield host
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


@pytest.fixture(scope="module")
def arm(sim_host):
    backend = FrankyBackend(
        sim_host,
        realtime=False,
        dynamics_factor=SafetyConfig().dynamics_factor,
        gripper=FrankaHandGripper(sim_host),
    )
    yield backend
    backend.close()


class Monitor:
    """Samples the arm's joint state at ~300 Hz in a background thread."""

    def __init__(self, backend):
        self.backend = backend
        self.samples: list[tuple[float, np.ndarray, np.ndarray, np.ndarray]] = []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            s = self.backend.robot.state
            self.samples.append((time.monotonic(), np.array(s.q), np.array(s.dq), np.array(s.dq_d)))
            time.sleep(0.003)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join(2)


def run(arm, endpoint, steps, on_step=None, **loop):
    client = PolicyClient(endpoint, timeout_s=0.3, retries=1)
    cfg = LoopConfig(
        max_steps=steps, request_timeout_s=0.3, max_server_wait_s=10, **{"dry_run": False, **loop}
    )
    runner = RobotRunner(arm, client, sim_cameras(), SafetyConfig(), cfg, on_step=on_step)
    with client:
        runner.reset()
        return runner.run_episode("wave at the camera")


def test_loop_runs_at_15hz_against_franky_sim_and_moves_the_arm(serve, arm):
    server = serve(ScriptedWavePolicy(amplitude=0.1, gripper_period=2))
    widths = []
    res = run(arm, server.endpoint, 45, on_step=lambda rec, p: widths.append(rec.state.gripper))
    assert res.status == "done" and res.steps == 45 and res.queries == 6 and res.faults == 0
    q = arm.read_state().q
    assert np.abs(q - RESET_JOINTS).max() > 0.02  # it moved
    assert max(widths) > 0.3  # the hand closed at some point (toggles every 2 queries)
    lateness = np.array(res.lateness_s)
    assert np.median(lateness) < 1 / 15  # paced on the grid (no assertion on jitter: shared machine)


def test_adversarial_actions_never_exceed_joint_limits_in_franky_sim(serve, arm):
    # Push joints 1, 4, 5 and 7 up toward their limits (a pose free of self-collision in the simulator),
    # with saturating and huge magnitudes, starting 0.45 rad from those limits.
    up = np.array([1, 0, 0, 1, 1, 0, 1], bool)
    start = RESET_JOINTS.copy()
    start[up] = FR3_Q_MAX[up] - 0.45
    arm.move_to(start, 20.0)
    server = serve(AdversarialPolicy(seed=1, flip_every=0, direction=up.astype(float)))
    with Monitor(arm) as mon:
        res = run(arm, server.endpoint, 45, reset_joints=tuple(arm.read_state().q))
    q = np.array([s[1] for s in mon.samples])
    dq = np.array([s[2] for s in mon.samples])
    assert (
        res.status == "done" and res.flags.get("position_clamped", 0) > 0 and res.flags.get("rescaled", 0) > 0
    )
    worst = np.minimum(q - FR3_Q_MIN, FR3_Q_MAX - q).min(0)
    assert np.all(worst > 0.0), f"joint limit exceeded: distance to limit per joint {worst}"
    gap = (FR3_Q_MAX - q)[:, up].min(0)
    assert np.all(gap < SafetyConfig().margin + 0.05), f"did not reach the margin band: {gap}"
    assert np.abs(dq).max() < 2.62  # below the lowest FR3 joint velocity limit
    print(f"adversarial: closest approach to a limit per pushed joint (rad): {np.round(gap, 3)}")
    arm.move_to(RESET_JOINTS, 20.0)


def test_server_killed_arm_rests_within_deadman_bound_then_recovers(serve, arm):
    server = serve(ScriptedWavePolicy(amplitude=1.0, period_steps=200))  # saturates the speed cap
    endpoint = server.endpoint
    step_times: list[float] = []
    state = {"killed_after": None, "restarted": False}

    def on_step(rec, prompt):
        step_times.append(time.monotonic())
        if len(step_times) == 20:
            server.stop()  # dies mid-chunk: the loop finishes the chunk, then gets no reply
            state["killed_after"] = time.monotonic()
            threading.Timer(
                1.5,
                lambda: (
                    serve(ScriptedWavePolicy(amplitude=0.2), bind=endpoint),
                    state.__setitem__("restarted", True),
                ),
            ).start()

    with Monitor(arm) as mon:
        res = run(arm, endpoint, 50, on_step=on_step)
    assert state["restarted"] and res.status == "done" and res.steps == 50 and res.server_outages == 1
    gaps = np.diff(step_times)
    i = int(np.argmax(gaps))
    assert gaps[i] > 0.8  # the outage
    t_last = step_times[i]
    after = [(t, dq, dqd) for t, _, dq, dqd in mon.samples if t_last < t < step_times[i + 1]]
    moving_before = [np.abs(dqd).max() for t, _, _, dqd in mon.samples if t_last - 0.2 < t < t_last]
    assert max(moving_before) > 0.3  # it was moving fast when the commands stopped
    rest = next(t for t, dq, dqd in after if np.abs(dqd).max() < 0.01 and np.abs(dq).max() < 0.15)
    q_rest = next(q for t, q, _, _ in mon.samples if t >= rest)
    drift = max(np.abs(q - q_rest).max() for t, q, _, _ in mon.samples if rest <= t < step_times[i + 1])
    assert drift < 0.01, (
        f"arm moved {drift:.4f} rad during the outage"
    )  # stays at rest until the server is back
    assert rest - t_last <= DEADMAN_BOUND_S + SLACK_S, (
        f"at rest {1000 * (rest - t_last):.0f} ms after the last command"
    )
    peak = max(moving_before)
    brake = next(t for t, dq, dqd in after if np.abs(dqd).max() < 0.9 * peak)
    print(
        f"dead-man: braking starts {1000 * (brake - t_last):.0f} ms, "
        f"arm at rest {1000 * (rest - t_last):.0f} ms after the last command; "
        f"drift afterwards {drift:.4f} rad"
    )


# ---------------------------------------------------------------- position guard sweep (issue 15)
# franky 2.0 refuses joint velocities above its own defaults (the Panda's), below the FR3 datasheet values
FRANKY_DQ_MAX = np.array([2.175] * 4 + [2.61] * 3)
FAST = SafetyConfig(velocity_fraction=1.0, deadman_s=0.45, dq_max=FRANKY_DQ_MAX)  # cap = franky's limits
# All joints at once: pattern P and -P drive every joint toward each of its limits. Both, and the start
# poses below, are free of contacts (self or floor) in franky-sim's MuJoCo model along the whole path;
# all joints toward their lower limits together is not (the arm folds into its base).
ALL_PATTERN = np.array([1, 1, 1, -1, 1, -1, 1])
STRAIGHT = np.array([0.0, 0.0, 0.0, -0.6, 0.0, 3.5, 0.0])  # joint 2 forward: arm stretched, hand up
UPRIGHT = np.array([0.0, 0.0, 0.0, -1.5, 0.0, 1.5, 0.0])  # joint 3: elbow clear of the base
BASE_POSE = {(1, 1): STRAIGHT, (2, 1): UPRIGHT, (2, -1): UPRIGHT}
GUARD_CASES = [
    (cfg_name, joint, d) for cfg_name in ("default", "fast") for joint in [*range(7), "all"] for d in (1, -1)
]


def _drive(arm, cfg: SafetyConfig, push: np.ndarray, seconds: float) -> np.ndarray:
    """The robot loop without the network: action = `push` (normalised, +-1 = full speed) at 15 Hz
    through ActionFilter with the measured velocity, for `seconds`; returns the sampled q."""
    from deploy.pacing import RateClock
    from deploy.safety import ActionFilter

    f = ActionFilter(cfg)
    clock = RateClock(cfg.control_hz)
    with Monitor(arm) as mon:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            s = arm.read_state()
            cmd = f(np.array([*push, 0.0]), s.q, s.dq)
            arm.command_velocity(cmd.velocity, cfg.hold_s)
            clock.wait()
        time.sleep(cfg.deadman_s + 0.2)  # the stop after the last command counts too
    arm.stop()
    return np.array([s[1] for s in mon.samples])


@pytest.mark.slow
@pytest.mark.parametrize("cfg_name, joint, direction", GUARD_CASES)
def test_position_guard_keeps_every_joint_inside_limit_minus_margin(arm, cfg_name, joint, direction):
    cfg = SafetyConfig() if cfg_name == "default" else FAST
    if joint == "all":
        joints, sign = np.arange(7), ALL_PATTERN * direction
    else:
        joints, sign = np.array([joint]), np.full(1, direction)
    bound = np.where(sign > 0, FR3_Q_MAX[joints], FR3_Q_MIN[joints])
    v_max = cfg.speed_cap
    gap = 0.5 if cfg_name == "default" else 1.0  # start this far inside the band: room to reach full speed
    start = BASE_POSE.get((joint, direction), RESET_JOINTS).copy()
    start[joints] = bound - sign * (cfg.margin + gap)
    arm.move_to(start, 20.0)
    push = np.zeros(7)
    push[joints] = sign
    q = _drive(arm, cfg, push, seconds=2.0 + gap / v_max.min())
    hi, lo = FR3_Q_MAX - cfg.margin, FR3_Q_MIN + cfg.margin
    past = np.maximum(q - hi, lo - q).max(0)  # > 0: passed limit - margin
    closest = (np.minimum(hi - q, q - lo).min(0))[joints]
    print(
        f"guard {cfg_name} joint {joint} dir {direction:+d}: closest to limit-margin (mrad) "
        f"{np.round(1000 * closest, 1).tolist()}"
    )
    assert np.all(past <= 0), f"passed limit - margin by {np.round(1000 * past, 2)} mrad"
    assert closest.max() < 0.05, "a pushed joint never got near the band: the test did not test the guard"
    arm.move_to(RESET_JOINTS, 20.0)
