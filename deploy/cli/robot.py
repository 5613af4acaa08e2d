"""pion-robot: run a served DROID policy on a Franka Research 3 (configs/robot.yaml).

Dry-run by default (commands are logged, nothing moves); `--arm` moves the arm, `--dry-run` forces
dry-run. Ctrl-C ends the episode at the next tick, stops the arm and finalises the recording.

Examples:
  pion-robot prompt="put the marker in the cup" server.address=tcp://10.0.0.5:5555 --arm
  pion-robot prompt=test robot.backend=fake record.enabled=false          # no hardware at all
"""

from __future__ import annotations

import logging
import signal
import sys

import numpy as np

from deploy.backends.fake import FakeBackend
from deploy.cameras import make_camera
from deploy.client import PolicyClient
from deploy.curve import CurveClientKeys
from deploy.droid import EXTERIOR_IMAGE, WRIST_IMAGE
from deploy.kinematics import fr3_flange_position
from deploy.runner import LoopConfig, RobotRunner
from deploy.safety import SafetyConfig
from vla.config import hydra_cli

log = logging.getLogger("pion-robot")
CAMERA_KEYS = {"exterior": EXTERIOR_IMAGE, "wrist": WRIST_IMAGE}


def make_backend(cfg, dynamics_factor: float):
    if cfg.backend == "fake":
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


def run(cfg) -> None:
    logging.basicConfig(level=cfg.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    s = cfg.safety
    safety = SafetyConfig(
        margin=s.margin,
        velocity_fraction=s.velocity_fraction,
        dynamics_factor=s.dynamics_factor,
        deadman_s=s.deadman_s,
        hold_s=s.hold_s,
        latency_s=s.latency_s,
        workspace_min=tuple(s.workspace_min) if s.workspace_min else None,
        workspace_max=tuple(s.workspace_max) if s.workspace_max else None,
    )
    loop = LoopConfig(
        open_loop_steps=cfg.loop.open_loop_steps,
        max_steps=cfg.loop.max_steps,
        dry_run=cfg.loop.dry_run,
        request_timeout_s=cfg.server.timeout_s,
        request_retries=cfg.server.retries,
        max_server_wait_s=cfg.loop.max_server_wait_s,
        max_consecutive_rejects=cfg.loop.max_consecutive_rejects,
        auto_recover=cfg.loop.auto_recover,
    )
    curve = None
    if cfg.server.curve.enabled:
        curve = CurveClientKeys.from_files(
            cfg.server.curve.client_secret_key, cfg.server.curve.server_public_key
        )
    cameras = {
        CAMERA_KEYS[name]: make_camera(name, c.kind, **{k: v for k, v in c.items() if k != "kind"})
        for name, c in cfg.cameras.items()
    }
    backend = make_backend(cfg.robot, safety.dynamics_factor)
    recorder = None
    if cfg.record.enabled:
        from deploy.recording import RolloutRecorder

        recorder = RolloutRecorder(cfg.record.root, cfg.record.repo_id, fps=int(safety.control_hz))
    client = PolicyClient(
        cfg.server.address, timeout_s=cfg.server.timeout_s, retries=cfg.server.retries, curve=curve
    )
    runner = RobotRunner(
        backend,
        client,
        cameras,
        safety,
        loop,
        flange_position=fr3_flange_position if s.workspace_min else None,
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
            client.close()
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


_hydra_main = hydra_cli("robot")(run)


def main() -> None:
    sys.argv[1:] = _translate_flags(sys.argv[1:])
    _hydra_main()


if __name__ == "__main__":
    main()
