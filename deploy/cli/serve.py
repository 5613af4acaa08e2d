"""pion-serve: serve a policy over ZeroMQ (configs/serve.yaml).

The policy is any spec of `vla.policies.load_policy`: a registered name, "package.module:factory",
a checkpoint directory, or even another server's tcp:// address (a relay).

Examples:
  pion-serve policy=scripted_wave bind=tcp://0.0.0.0:5555
  pion-serve policy=hold action_space=droid_joint_velocity
  pion-serve policy=my_pkg.loader:load_policy +policy_kwargs.checkpoint=/ckpt
  pion-serve policy=outputs/train/checkpoint                 # a trained checkpoint directory
  pion-serve keygen=/etc/pion/keys            # write server + client CURVE key pairs and exit
  pion-serve curve.enabled=true curve.server_secret_key=keys/server.key_secret \
             'curve.allowed_clients=[keys/client.key]'
"""

from __future__ import annotations

import logging
import signal
from dataclasses import dataclass, field
from typing import Any

from vla.config import hydra_cli

log = logging.getLogger("pion-serve")
LOCAL_BINDS = ("tcp://127.", "tcp://localhost", "ipc://", "inproc://")


@dataclass
class ServeCurveConfig:
    enabled: bool = False
    server_secret_key: str | None = None  # e.g. keys/server.key_secret (from `pion-serve keygen=keys`)
    allowed_clients: list[str] = field(default_factory=list)  # client public .key files, dirs, or Z85 strings


@dataclass
class ServeConfig:
    """configs/serve.yaml, validated."""

    policy: str = "scripted_wave"  # any spec of vla.policies.load_policy
    policy_kwargs: dict[str, Any] = field(default_factory=dict)  # passed to the policy's factory
    action_space: str | None = (
        None  # what the clients execute: parameterises "hold", checked; None = as built
    )
    bind: str = "tcp://127.0.0.1:5555"
    max_message_bytes: int = 8388608
    max_batch: int = 1  # > 1 stacks queued concurrent requests into one predict_chunk call
    batch_window_ms: float = 0.0
    curve: ServeCurveConfig = field(default_factory=ServeCurveConfig)
    keygen: str | None = None  # a directory: write server + client key pairs there and exit
    log_level: str = "INFO"


def run(cfg: ServeConfig) -> None:
    from deploy.curve import CurveServerKeys
    from deploy.keys import main as keygen_main
    from deploy.server import PolicyServer
    from vla.policies import load_policy

    logging.basicConfig(level=cfg.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if cfg.keygen:
        raise SystemExit(keygen_main([str(cfg.keygen)]))
    policy = load_policy(cfg.policy, action_space=cfg.action_space, **cfg.policy_kwargs)
    curve = None
    if cfg.curve.enabled:
        curve = CurveServerKeys.from_files(cfg.curve.server_secret_key, list(cfg.curve.allowed_clients))
    elif not str(cfg.bind).startswith(LOCAL_BINDS):
        log.warning(
            "serving on %s WITHOUT encryption or client authentication; set curve.enabled=true "
            "on any network you do not fully control",
            cfg.bind,
        )
    server = PolicyServer(
        policy,
        cfg.bind,
        max_message_bytes=cfg.max_message_bytes,
        max_batch=cfg.max_batch,
        batch_window_ms=cfg.batch_window_ms,
        curve=curve,
    )
    signal.signal(signal.SIGTERM, lambda *_: server.request_stop())
    signal.signal(signal.SIGINT, lambda *_: server.request_stop())
    log.info(
        "policy %s (%s, chunk %d x %d) on %s; Ctrl-C to stop",
        policy.spec.policy_id,
        policy.spec.action_space,
        policy.spec.chunk_len,
        policy.spec.action_dim,
        server.endpoint,
    )
    server.serve_forever()


main = hydra_cli("serve", schema=ServeConfig)(run)

if __name__ == "__main__":
    main()
