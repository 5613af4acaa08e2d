import numpy as np
import pytest

from deploy.droid import FR3_Q_MAX, FR3_Q_MIN, RESET_JOINTS
from deploy.gripper import GripperHysteresis
from deploy.safety import ActionFilter, SafetyConfig, UnsafeAction

CFG = SafetyConfig()
DT = 1 / 15


def act(v, g=0.0):
    return np.array([*np.broadcast_to(v, 7), g], float)


@pytest.mark.parametrize(
    "bad", [act(np.nan), act(0.0, np.inf), act([0, 0, 0, -np.inf, 0, 0, 0]), np.zeros(7), np.zeros(9)]
)
def test_nan_inf_and_wrong_shape_actions_are_rejected(bad):
    with pytest.raises(UnsafeAction):
        ActionFilter(CFG)(bad, RESET_JOINTS)


def test_small_action_maps_to_q_plus_point_two_v():
    v = np.array([0.01, -0.02, 0.03, 0.0, 0.05, -0.01, 0.02])
    cmd = ActionFilter(CFG)(act(v, 0.7), RESET_JOINTS)
    np.testing.assert_allclose(cmd.velocity, 0.2 * v / DT)
    np.testing.assert_allclose(cmd.target, RESET_JOINTS + 0.2 * v)
    assert cmd.flags == [] and cmd.gripper == pytest.approx(0.7)


def test_out_of_range_velocity_is_rescaled_then_speed_capped():
    cmd = ActionFilter(CFG)(act([1e6, 0, 0, 0, 0, 0, -5e5]), RESET_JOINTS)
    assert "rescaled" in cmd.flags and "velocity_capped" in cmd.flags
    assert np.all(np.abs(cmd.velocity) <= CFG.speed_cap + 1e-12)
    # direction preserved: joint 1 positive, joint 7 negative at the cap
    assert cmd.velocity[0] == pytest.approx(CFG.speed_cap[0]) and cmd.velocity[6] < 0


def test_speed_cap_lets_the_arm_stop_within_deadman_bound():
    cap = CFG.speed_cap
    assert np.all(cap <= CFG.velocity_fraction * CFG.dq_max)
    assert np.all(CFG.hold_s + CFG.latency_s + cap / CFG.decel <= CFG.deadman_s + 1e-12)


@pytest.mark.parametrize("joint", range(7))
@pytest.mark.parametrize("direction", [-1, 1])
def test_target_and_stopping_point_stay_inside_limits_near_each_bound(joint, direction):
    f = ActionFilter(CFG)
    q = RESET_JOINTS.copy()
    bound = FR3_Q_MAX if direction > 0 else FR3_Q_MIN
    for start in np.linspace(0.3, -0.05, 15):  # from well inside to beyond the margin
        q[joint] = bound[joint] - direction * start
        cmd = f(act(np.eye(7)[joint] * direction), q)
        v = cmd.velocity[joint]
        stop_at = q[joint] + v * CFG.hold_s + np.sign(v) * v**2 / (2 * CFG.decel[joint])
        inner = bound[joint] - direction * CFG.margin / 2
        planned_stop = bound[joint] - direction * (CFG.margin + CFG.guard_buffer)
        past_stop = direction * (q[joint] - planned_stop) > 0  # then the guard may move it back
        if direction > 0:
            assert (v >= 0 or past_stop) and (stop_at <= inner + 1e-9 or v <= 0)
            assert cmd.target[joint] <= FR3_Q_MAX[joint] - CFG.margin + 1e-9 or v <= 0
        else:
            assert (v <= 0 or past_stop) and (stop_at >= inner - 1e-9 or v >= 0)
            assert cmd.target[joint] >= FR3_Q_MIN[joint] + CFG.margin - 1e-9 or v >= 0


def test_beyond_margin_the_arm_may_only_move_back_inside():
    q = RESET_JOINTS.copy()
    q[3] = FR3_Q_MAX[3] - 0.01  # joint 4 almost at its upper limit
    f = ActionFilter(CFG)
    assert f(act(np.eye(7)[3]), q).velocity[3] <= 0
    assert f(act(-np.eye(7)[3]), q).velocity[3] < 0


def test_workspace_box_holds_arm_when_target_leaves_it():
    fk = lambda q: np.array([0.5, 0.0, q[0]])  # noqa: E731 - toy kinematics: z follows joint 1
    cfg = SafetyConfig(workspace_min=(0, -1, -0.05), workspace_max=(1, 1, 0.05))
    f = ActionFilter(cfg, fk)
    q = np.zeros(7)
    assert "workspace_hold" not in f(act([0.01, 0, 0, 0, 0, 0, 0]), q).flags
    cmd = f(act([1, 0, 0, 0, 0, 0, 0]), q + np.array([0.04, 0, 0, 0, 0, 0, 0]))
    assert "workspace_hold" in cmd.flags and np.all(cmd.velocity == 0)


def test_config_refuses_hold_shorter_than_a_period_and_no_braking_budget():
    with pytest.raises(ValueError, match="hold_s"):
        SafetyConfig(hold_s=0.05)
    with pytest.raises(ValueError, match="deadman"):
        SafetyConfig(hold_s=0.11, deadman_s=0.2)


def test_gripper_hysteresis_and_dwell():
    g = GripperHysteresis(close_above=0.6, open_below=0.4, min_dwell_s=0.3)
    assert g.update(0.55, 0.0) is None and not g.closed  # inside the band: keep open
    assert g.update(0.65, 0.1) is True
    assert g.update(0.45, 0.5) is None and g.closed  # inside the band: keep closed
    assert g.update(0.1, 0.55) is False
    assert g.update(0.9, 0.6) is None  # dwell: 0.05 s after a switch
    assert g.update(0.9, 0.9) is True
    with pytest.raises(ValueError):
        GripperHysteresis(close_above=0.4, open_below=0.6)


def test_fr3_flange_kinematics_at_known_poses():
    from deploy.kinematics import fr3_flange_position

    # all joints zero: arm straight up, flange offset 0.088 m forward (a7), height 0.333+0.316+0.384-0.107
    np.testing.assert_allclose(fr3_flange_position(np.zeros(7)), [0.088, 0.0, 0.926], atol=1e-9)
    # joint 1 rotates the whole arm about z
    p = fr3_flange_position(np.array([np.pi / 2, 0, 0, 0, 0, 0, 0]))
    np.testing.assert_allclose(p, [0.0, 0.088, 0.926], atol=1e-9)
    # the DROID reset pose puts the flange in front of the base, above the table
    x, y, z = fr3_flange_position(RESET_JOINTS)
    assert 0.3 < x < 0.6 and abs(y) < 1e-9 and 0.3 < z < 0.7


# ---------------------------------------------------------------- position guard (issue 15)
def test_guard_brakes_when_the_current_velocity_needs_all_the_room():
    f = ActionFilter(CFG)
    q = RESET_JOINTS.copy()
    q[0] = FR3_Q_MAX[0] - CFG.margin - 0.05  # 50 mrad before the band
    dq = np.zeros(7)
    dq[0] = 0.5  # already moving toward it at the speed cap
    assert f(act(np.eye(7)[0]), q, dq).velocity[0] == 0.0  # brake now
    dq[0] = 0.0  # at rest the same room allows a slow approach whose worst-case stop still fits
    v = f(act(np.eye(7)[0]), q, dq).velocity[0]
    room = FR3_Q_MAX[0] - CFG.margin - CFG.guard_buffer - q[0]
    assert v > 0 and f.stop_distance(np.zeros(1), np.array([v]))[0] <= room + 1e-12
    assert f(act(-np.eye(7)[0]), q, np.eye(7)[0] * 0.5).velocity[0] < 0  # moving away is always allowed


@pytest.mark.parametrize("direction", [1, -1])
def test_guard_in_closed_loop_with_lagging_arm_never_passes_limit_minus_margin(direction):
    from deploy.backends.fake import FakeBackend

    t = [0.0]
    arm = FakeBackend(accel=CFG.decel * CFG.brake_fraction, clock=lambda: t[0])
    fast = SafetyConfig(velocity_fraction=1.0, deadman_s=0.45)
    for cfg in (CFG, fast):
        f = ActionFilter(cfg)
        bound = FR3_Q_MAX if direction > 0 else FR3_Q_MIN
        arm.move_to(bound - direction * (cfg.margin + 1.0))
        worst = -np.inf
        for _ in range(int(4 * cfg.control_hz)):  # 4 s of full-speed pushes on every joint at once
            s = arm.read_state()
            cmd = f(act(np.full(7, direction)), s.q, s.dq)
            arm.command_velocity(cmd.velocity, cfg.hold_s)
            for _ in range(10):  # sample the motion between ticks
                t[0] += 1 / cfg.control_hz / 10
                worst = max(
                    worst, np.max(direction * (arm.read_state().q - (bound - direction * cfg.margin)))
                )
        assert worst <= 0, f"passed limit - margin by {worst * 1000:.2f} mrad"
        assert worst > -0.03  # and it did get close
