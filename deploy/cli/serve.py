"""pion-serve: serve a policy over ZeroMQ (configs/serve.yaml).

Examples:
  pion-serve policy.name=scripted_wave bind=tcp://0.0.0.0:5555
  pion-serve policy.target=my_pkg.loader:load_policy +policy.kwargs.checkpoint=/ckpt
  pion-serve keygen=/etc/pion/keys            # write server + client CURVE key pairs and exit
  pion-serve curve.enabled=true curve.server_secret_key=keys/server.key_secret \
             'curve.allowed_clients=[keys/client.key]'
"""

from __future__ import annotations

import importlib
import logging
import signal
from typing import Any

from deploy.curve import CurveServerKeys
from deploy.keys import main as keygen_main
from deploy.policies import make_policy
from deploy.server import PolicyServer
from vla.config import hydra_cli
from vla.protocol import Policy

log = logging.getLogger("pion-serve")


def load_policy(name: str | None, target: str | None, kwargs: dict[str, Any]) -> Policy:
    if target:
        module, _, attr = target.partition(":")
        if not attr:
            raise ValueError(f"policy.target {target!r} must look like 'package.module:factory'")
        policy = getattr(importlib.import_module(module), attr)(**kwargs)
    else:
        policy = make_policy(name, **kwargs)
    if not isinstance(policy, Policy):
        raise TypeError(f"{type(policy).__name__} does not implement vla.protocol.Policy")
    return policy


def run(cfg) -> None:
    logging.basicConfig(level=cfg.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if cfg.keygen:
        raise SystemExit(keygen_main([str(cfg.keygen)]))
    policy = load_policy(cfg.policy.name, cfg.policy.target, dict(cfg.policy.kwargs or {}))
    curve = None
    if cfg.curve.enabled:
        curve = CurveServerKeys.from_files(cfg.curve.server_secret_key, list(cfg.curve.allowed_clients))
    elif not str(cfg.bind).startswith(("tcp://127.", "tcp://localhost", "ipc://", "inproc://")):
        log.warning(
            "serving on %s WITHOUT encryption or client authentication; set curve.enabled=true "
            "on any network you do not fully control",
            cfg.bind,
        )
    server = PolicyServer(
        policy,
        cfg.bind,
        max_message_bytes=int(cfg.max_message_bytes),
        max_batch=int(cfg.max_batch),
        batch_window_ms=float(cfg.batch_window_ms),
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


main = hydra_cli("serve")(run)

if __name__ == "__main__":
    main()
