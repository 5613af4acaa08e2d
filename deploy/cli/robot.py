"""pion-robot: run a DROID policy on a Franka Research 3 (configs/robot.yaml).

The policy is any spec of `vla.policies.load_policy`: usually a served policy (tcp://host:port, with
the `server` deadlines and CURVE keys), or a registered name / module:factory run in this process.
It must be a DROID joint-velocity policy for our cameras, else it is refused before the first step.
Dry-run by default, in code and YAML (commands are logged, nothing moves); `--arm` moves the arm,
`--dry-run` forces dry-run. Ctrl-C ends the episode at the next tick, stops the arm and finalises the recording.

Examples:
  pion-robot prompt="put the marker in the cup" policy=tcp://10.0.0.5:5555 --arm
  pion-robot prompt=test robot.backend=fake record.enabled=false          # no hardware at all
  pion-robot prompt=test robot.backend=fake policy=hold                   # no server either
"""

from __future__ import annotations

import logging
import signal
import sys
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from deploy.runner import LoopConfig
from deploy.safety import SafetyConfig
from vla.config import build_from, hydra_cli

log = logging.getLogger("pion-robot")


@dataclass
class ClientCurveConfig:
    enabled: bool = False
    client_secret_key: str | None = None  # this robot's keys/client.key_secret
    server_public_key: str | None = None  # the server's keys/server.key


@dataclass
class ServerConfig:
    """How a served (tcp://) policy is reached."""

    timeout_s: float = LoopConfig.request_timeout_s  # per attempt; the arm is stopped when no reply comes
    retries: int = LoopConfig.request_retries
    curve: ClientCurveConfig = field(default_factory=ClientCurveConfig)


@dataclass
class BackendConfig:
    backend: str = "franky"  # franky (real arm or franky-sim) | fake (pure Python, no hardware)
    host: str = "172.16.0.2"  # FCI address of the arm
    realtime: bool = True  # false for franky-sim or a non-RT host
    gripper: str = "franka_hand"  # franka_hand | robotiq | none
    robotiq_port: str = "/dev/ttyUSB0"
    torque_threshold: float = 20.0  # collision thresholds (Nm / N), franky defaults
    force_threshold: float = 30.0


@dataclass
class RobotSafetyConfig:
    """The YAML-settable part of `deploy.safety.SafetyConfig` (same defaults)."""

    margin: float = SafetyConfig.margin
    velocity_fraction: float = SafetyConfig.velocity_fraction
    dynamics_factor: float = SafetyConfig.dynamics_factor
    deadman_s: float = SafetyConfig.deadman_s
    hold_s: float = SafetyConfig.hold_s
    latency_s: float = SafetyConfig.latency_s
    workspace_min: list[float] | None = None  # flange position box in the base frame
    workspace_max: list[float] | None = None

    def build(self) -> SafetyConfig:
        box = {
            k: tuple(v) if v else None
            for k, v in (("workspace_min", self.workspace_min), ("workspace_max", self.workspace_max))
        }
        return build_from(SafetyConfig, self, **box)


@dataclass
class RobotLoopConfig:
    """The YAML-settable part of `deploy.runner.LoopConfig` (same defaults; dry run unless asked)."""

    open_loop_steps: int = LoopConfig.open_loop_steps
    max_steps: int = LoopConfig.max_steps
    dry_run: bool = LoopConfig.dry_run
    max_server_wait_s: float = LoopConfig.max_server_wait_s
    max_consecutive_rejects: int = LoopConfig.max_consecutive_rejects
    auto_recover: bool = LoopConfig.auto_recover
    temporal_ensemble: float | None = None
    chunk_threshold: float | None = None  # pause-free: request at this fraction of the chunk left
    aggregate: str = LoopConfig.aggregate  # replace | weighted_average | average | conservative
    rtc: bool = LoopConfig.rtc  # real-time chunking: send the queued actions with each request


@dataclass
class RecordConfig:
    enabled: bool = True
    root: str = "outputs/rollouts"  # the YAML adds the start time
    repo_id: str = "local/pion_rollouts"


@dataclass
class RobotConfig:
    """configs/robot.yaml, validated."""

    prompt: str = "???"  # the language instruction (required)
    episodes: int = 1
    policy: str = "tcp://127.0.0.1:5555"  # any spec of vla.policies.load_policy
    policy_kwargs: dict[str, Any] = field(default_factory=dict)  # for a local policy's factory
    server: ServerConfig = field(default_factory=ServerConfig)
    robot: BackendConfig = field(default_factory=BackendConfig)
    safety: RobotSafetyConfig = field(default_factory=RobotSafetyConfig)
    loop: RobotLoopConfig = field(default_factory=RobotLoopConfig)
    cameras: dict[str, dict[str, Any]] = field(
        default_factory=lambda: {"exterior": {"kind": "sim"}, "wrist": {"kind": "sim"}}
    )  # name (exterior | wrist) -> {kind: sim | opencv | zed, plus that kind's arguments}
    record: RecordConfig = field(default_factory=RecordConfig)
    log_level: str = "INFO"

    def __post_init__(self) -> None:
        bad = sorted(set(self.cameras) - {"exterior", "wrist"})
        if bad:
            raise ValueError(f"unknown cameras {bad}; use exterior and wrist")
        if any("kind" not in c for c in self.cameras.values()):
            raise ValueError("every camera needs a kind: sim, opencv or zed")


def make_backend(cfg, dynamics_factor: float):
    if cfg.backend == "fake":
        from deploy.backends.fake import FakeBackend

        return FakeBackend()
    if cfg.backend != "franky":
        raise ValueError(f"robot.backend={cfg.backend!r}; use franky or fake")
    from deploy.backends.franky_backend import FrankaHandGripper, FrankyBackend

    gripper = None
    if cfg.gripper == "franka_hand":
        gripper = FrankaHandGripper(cfg.host)
    elif cfg.gripper == "robotiq":
        from deploy.robotiq import RobotiqGripper

        gripper = RobotiqGripper.open_serial(cfg.robotiq_port)
    elif cfg.gripper != "none":
        raise ValueError(f"robot.gripper={cfg.gripper!r}; use franka_hand, robotiq or none")
    return FrankyBackend(
        cfg.host,
        dynamics_factor=dynamics_factor,
        realtime=cfg.realtime,
        torque_threshold=cfg.torque_threshold,
        force_threshold=cfg.force_threshold,
        gripper=gripper,
    )


def load_robot_policy(cfg: RobotConfig):
    """The policy named by cfg.policy, refused unless it is a DROID joint-velocity policy."""
    from deploy.curve import CurveClientKeys
    from vla.conventions import DROID_JOINT_VELOCITY
    from vla.policies import load_policy, spec_kind

    kwargs = dict(cfg.policy_kwargs)
    if spec_kind(cfg.policy) == "remote":
        curve = None
        if cfg.server.curve.enabled:
            curve = CurveClientKeys.from_files(
                cfg.server.curve.client_secret_key, cfg.server.curve.server_public_key
            )
        kwargs = {"timeout_s": cfg.server.timeout_s, "retries": cfg.server.retries, "curve": curve, **kwargs}
    return load_policy(cfg.policy, action_space=DROID_JOINT_VELOCITY, **kwargs)


def run(cfg: RobotConfig) -> None:
    from deploy.cameras import make_camera
    from deploy.droid import EXTERIOR_IMAGE, WRIST_IMAGE
    from deploy.kinematics import fr3_flange_position
    from deploy.runner import RobotRunner

    logging.basicConfig(level=cfg.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    safety = cfg.safety.build()
    loop = build_from(
        LoopConfig, cfg.loop, request_timeout_s=cfg.server.timeout_s, request_retries=cfg.server.retries
    )
    camera_keys = {"exterior": EXTERIOR_IMAGE, "wrist": WRIST_IMAGE}
    policy = load_robot_policy(cfg)
    cameras = {
        camera_keys[name]: make_camera(name, c["kind"], **{k: v for k, v in c.items() if k != "kind"})
        for name, c in cfg.cameras.items()
    }
    backend = make_backend(cfg.robot, safety.dynamics_factor)
    recorder = None
    if cfg.record.enabled:
        from deploy.recording import RolloutRecorder

        # the frames the policy sees (deploy/runner.py resizes to the policy's image size), not a fixed 224
        image_size = next(iter(policy.spec.image_shapes.values()))[0]
        recorder = RolloutRecorder(
            cfg.record.root, cfg.record.repo_id, fps=int(safety.control_hz), image_size=image_size
        )
    runner = RobotRunner(
        backend,
        policy,
        cameras,
        safety,
        loop,
        flange_position=fr3_flange_position if cfg.safety.workspace_min else None,
        on_step=recorder,
    )
    # Ctrl-C: end the episode at the next tick (never mid-request), then stop and save.
    signal.signal(signal.SIGINT, lambda *_: runner.request_stop())
    signal.signal(signal.SIGTERM, lambda *_: runner.request_stop())
    try:
        meta = runner.connect()
        log.info(
            "policy %s, chunk %d, %s mode",
            meta["policy"]["policy_id"],
            meta["policy"]["chunk_len"],
            "DRY-RUN (nothing moves)" if loop.dry_run else "LIVE ARM",
        )
        for ep in range(cfg.episodes):
            runner.reset()
            res = runner.run_episode(cfg.prompt)
            late = np.array(res.lateness_s) * 1000 if res.lateness_s else np.zeros(1)
            log.info(
                "episode %d: %s after %d steps, %d queries, flags %s, lateness p99 %.2f ms %s",
                ep,
                res.status,
                res.steps,
                res.queries,
                res.flags,
                np.percentile(late, 99),
                res.message,
            )
            if recorder is not None:
                recorder.end_episode()
            if res.status != "done":
                break
    finally:
        try:
            backend.close()
        finally:
            if hasattr(policy, "close"):
                policy.close()
            for cam in cameras.values():
                cam.close()
            if recorder is not None:
                recorder.finalize()
                log.info("recording finalised in %s", cfg.record.root)


def _translate_flags(argv: list[str]) -> list[str]:
    out = []
    for a in argv:
        if a == "--dry-run":
            out.append("loop.dry_run=true")
        elif a == "--arm":
            out.append("loop.dry_run=false")
        else:
            out.append(a)
    return out


_hydra_main = hydra_cli("robot", schema=RobotConfig)(run)


def main() -> None:
    sys.argv[1:] = _translate_flags(sys.argv[1:])
    _hydra_main()


if __name__ == "__main__":
    main()
