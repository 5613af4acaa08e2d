"""Turn one DROID action into a safe joint-velocity command for the arm.

Steps, in order (each recorded in `JointCommand.flags` when it changed something):
1. refuse an action that is not 8 finite numbers (`UnsafeAction`; the caller holds the arm);
2. rescale the 7 velocities if max |v| > 1 (DROID's rule), target = q + 0.2 * v;
3. clamp the target to [q_min + margin, q_max - margin] (inside the band: hold or move inward);
4. velocity = (target - q) / dt, capped per joint at `velocity_fraction` * dq_max, and at the speed
   from which the arm can still stop within the dead-man bound after its command expires;
5. position guard: cap each joint's speed toward a limit so that the arm can still stop before
   `limit - margin` from its *current* velocity (measured `dq`, or the last command if higher): it may
   keep that velocity for `latency_s` before reacting, then run at the new command for `hold_s` (the
   loop stalls, the command expires), then brake at `brake_fraction` of the acceleration limit; it
   plans to stop `guard_buffer` inside the band edge (tracking error), and moves a joint that is past
   that point by up to another `guard_buffer` back at `guard_gain` * overshoot;
6. optional workspace box on the flange position of the target: outside -> hold still.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from deploy.droid import (
    ACTION_DIM,
    CONTROL_HZ,
    FR3_DDQ_MAX,
    FR3_DQ_MAX,
    FR3_Q_MAX,
    FR3_Q_MIN,
    MAX_JOINT_DELTA,
)


class UnsafeAction(ValueError):
    """An action that must not be executed (NaN/inf, wrong shape)."""


@dataclass(frozen=True)
class SafetyConfig:
    margin: float = 0.15  # rad kept clear of each joint position limit
    velocity_fraction: float = 0.25  # of the FR3 joint velocity limits
    dynamics_factor: float = 1.0  # franky relative dynamics factor; sets the braking deceleration
    deadman_s: float = 0.2  # the arm must be at rest this long after the last command
    hold_s: float = 0.07  # how long each velocity command lasts if not replaced (> 1/15 s)
    latency_s: float = (
        0.08  # command-to-braking overhead beyond hold_s (measured ~45 ms in franky-sim) + tracking lag
    )
    control_hz: float = CONTROL_HZ
    brake_fraction: float = 0.8  # of the acceleration limit counted on for braking (jerk ramp, tracking)
    guard_buffer: float = 0.01  # rad: the position guard plans to stop this far inside limit - margin
    guard_gain: float = 5.0  # 1/s: speed back toward the inside per rad a joint is past its planned stop
    workspace_min: tuple[float, float, float] | None = None  # flange position box (m), base frame
    workspace_max: tuple[float, float, float] | None = None
    q_min: np.ndarray = field(default_factory=lambda: FR3_Q_MIN.copy())
    q_max: np.ndarray = field(default_factory=lambda: FR3_Q_MAX.copy())
    dq_max: np.ndarray = field(default_factory=lambda: FR3_DQ_MAX.copy())

    def __post_init__(self) -> None:
        for name in ("velocity_fraction", "dynamics_factor", "brake_fraction"):
            if not 0 < getattr(self, name) <= 1:
                raise ValueError(f"{name}={getattr(self, name)} must be in (0, 1]")
        if self.hold_s <= 1.0 / self.control_hz:
            raise ValueError(f"hold_s={self.hold_s} must exceed one control period (1/{self.control_hz} s)")
        if self.deadman_s - self.hold_s - self.latency_s < 0.02:
            raise ValueError(
                f"deadman_s={self.deadman_s} leaves < 20 ms to brake after hold_s={self.hold_s} "
                f"and latency_s={self.latency_s}"
            )
        if not 0 <= self.guard_buffer < self.margin:
            raise ValueError(f"guard_buffer={self.guard_buffer} must be in [0, margin={self.margin})")
        if np.any(self.q_max - self.q_min <= 2 * self.margin):
            raise ValueError("margin too large for the joint ranges")

    @property
    def decel(self) -> np.ndarray:
        """Braking acceleration the controller can apply (rad/s^2)."""
        return FR3_DDQ_MAX * self.dynamics_factor

    @property
    def speed_cap(self) -> np.ndarray:
        """Per-joint max commanded speed: fraction of dq_max, and stoppable within the dead-man bound."""
        brake_time = self.deadman_s - self.hold_s - self.latency_s
        return np.minimum(self.velocity_fraction * self.dq_max, self.decel * brake_time)


@dataclass
class JointCommand:
    velocity: np.ndarray  # rad/s, 7
    target: np.ndarray  # rad, 7 (after clamps)
    gripper: float  # raw gripper action, 0 open .. 1 closed
    flags: list[str]


class ActionFilter:
    """Maps DROID actions to joint-velocity commands that respect the FR3 limits (see module doc)."""

    def __init__(self, cfg: SafetyConfig, flange_position: Callable[[np.ndarray], np.ndarray] | None = None):
        self.cfg = cfg
        self.dt = 1.0 / cfg.control_hz
        self.fk = flange_position
        self.last_velocity = np.zeros(7)  # the previous command: the arm may not have reached it yet
        if (cfg.workspace_min is None) != (cfg.workspace_max is None):
            raise ValueError("give both workspace_min and workspace_max, or neither")
        if cfg.workspace_min is not None and flange_position is None:
            raise ValueError("workspace bounds need a forward-kinematics function")

    def __call__(self, action: np.ndarray, q: np.ndarray, dq: np.ndarray | None = None) -> JointCommand:
        """Filter one action at measured joint positions `q` and velocities `dq` (rad/s; None: use the
        last command as the estimate of the current velocity)."""
        cfg = self.cfg
        a = np.asarray(action, dtype=np.float64)
        if a.shape != (ACTION_DIM,):
            raise UnsafeAction(f"action shape {a.shape} != ({ACTION_DIM},)")
        if not np.all(np.isfinite(a)):
            raise UnsafeAction(f"action contains NaN/inf: {a.tolist()}")
        q = np.asarray(q, dtype=np.float64)
        if q.shape != (7,) or not np.all(np.isfinite(q)):
            raise UnsafeAction(f"measured joint positions are invalid: {q}")
        flags: list[str] = []
        v = a[:7]
        peak = np.max(np.abs(v))
        if peak > 1.0:
            v = v / peak
            flags.append("rescaled")
        target = q + MAX_JOINT_DELTA * v
        # inside the margin band the arm may hold or move back inward, but is never pushed un-commanded
        lo = np.minimum(cfg.q_min + cfg.margin, q)
        hi = np.maximum(cfg.q_max - cfg.margin, q)
        clamped = np.clip(target, lo, hi)
        if not np.array_equal(clamped, target):
            flags.append("position_clamped")
        vel = (clamped - q) / self.dt
        cap = cfg.speed_cap
        capped = np.clip(vel, -cap, cap)
        if not np.array_equal(capped, vel):
            flags.append("velocity_capped")
        dq = self.last_velocity if dq is None else np.asarray(dq, dtype=np.float64)
        if dq.shape != (7,) or not np.all(np.isfinite(dq)):
            raise UnsafeAction(f"measured joint velocities are invalid: {dq}")
        up_now = np.maximum.reduce([dq, self.last_velocity, np.zeros(7)])
        down_now = np.maximum.reduce([-dq, -self.last_velocity, np.zeros(7)])
        inset = cfg.margin + cfg.guard_buffer
        up = self.allowed_speed(cfg.q_max - inset - q, up_now)
        down = self.allowed_speed(q - (cfg.q_min + inset), down_now)
        guarded = np.clip(capped, -down, up)
        if not np.array_equal(guarded, capped):
            flags.append("stop_distance_capped")
        vel = guarded
        target = q + vel * self.dt
        if self.fk is not None and cfg.workspace_min is not None:
            p = np.asarray(self.fk(target))
            if np.any(p < np.asarray(cfg.workspace_min)) or np.any(p > np.asarray(cfg.workspace_max)):
                flags.append("workspace_hold")
                vel = np.zeros(7)
                target = q.copy()
        self.last_velocity = vel.copy()
        return JointCommand(vel, target, float(np.clip(a[7], 0.0, 1.0)), flags)

    def stop_distance(self, v_now: np.ndarray, v_cmd: np.ndarray) -> np.ndarray:
        """Worst-case travel toward a limit (>= 0 speeds): `v_now` for latency_s, then max(v_now, v_cmd)
        for hold_s, then braking at brake_fraction * decel."""
        cfg = self.cfg
        w = np.maximum(v_now, v_cmd)
        return v_now * cfg.latency_s + w * cfg.hold_s + w**2 / (2 * cfg.decel * cfg.brake_fraction)

    def allowed_speed(self, room: np.ndarray, v_now: np.ndarray) -> np.ndarray:
        """Largest command toward a bound `room` away (rad) whose stop_distance fits; 0 if even the current
        velocity needs all of it (then braking now is all that is left); negative (move back) when the
        joint is up to 2 * guard_buffer past the bound."""
        cfg = self.cfg
        a, hold = cfg.decel * cfg.brake_fraction, cfg.hold_s
        rest = np.maximum(room - v_now * cfg.latency_s, 0.0)
        # hold * w + w^2 / (2a) <= rest  ->  w = a * (-hold + sqrt(hold^2 + 2 rest / a))
        w = a * (-hold + np.sqrt(hold**2 + 2 * rest / a))
        allowed = np.where((room > 0) & (w >= v_now), w, 0.0)
        # Past the planned stop but near it (tracking error, drift while holding): move back at a speed
        # proportional to the overshoot. Deeper in the band (e.g. the arm started there) only hold.
        back = (room < 0) & (room >= -2 * cfg.guard_buffer)
        return np.where(back, cfg.guard_gain * room, allowed)
