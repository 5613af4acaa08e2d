"""The one way to name and load a policy: `load_policy(spec)` for every CLI, the harness and the trainer.

| spec                          | resolves to                                                        |
|-------------------------------|--------------------------------------------------------------------|
| a registered name ("hold")    | the factory registered under that name (table `POLICIES` below)    |
| "package.module:factory"      | that callable, imported on use                                     |
| a directory with config.json  | a trained checkpoint: `vla.models.checkpoint.load_policy_dir`      |
| "tcp://host:port", "ipc://.." | a policy served by `pion-serve`, seen as a local policy (handshake) |

Layering: vla is the bottom layer and imports neither `envs` nor `deploy`. The policies of upper layers
are listed here as "module:factory" *strings* and imported only when asked for, so `vla` never depends
on them; `register_policy` adds more at run time (plugins, tests).

Factories get the keyword arguments given to `load_policy`, plus `env=` and `action_space=` when their
signature takes them. `action_space=` (what the consumer executes) both parameterises policies that take
it (hold-still) and is checked against the built policy's spec (`vla.conventions.check_fits`).
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vla.conventions import LIBERO_OSC_DELTA, check_fits
from vla.conventions import action_space as get_action_space
from vla.protocol import Policy, PolicySpec, validate_batch

CHECKPOINT_CONFIG = "config.json"
REMOTE_SCHEMES = ("tcp://", "ipc://")
REMOTE_FACTORY = "deploy.remote:RemotePolicy"


class PolicyLoadError(ValueError):
    """A policy spec names nothing loadable, or the policy it names cannot be built here."""


@dataclass(frozen=True)
class PolicyEntry:
    """A named policy: where its factory lives and whether it must run next to one simulator."""

    target: str  # "package.module:factory"
    doc: str  # one line for listings
    env_bound: bool = False  # reads privileged state of the env it acts in (needs env=, cannot be shared)


POLICIES: dict[str, PolicyEntry] = {
    "hold": PolicyEntry("vla.policies:HoldStillPolicy", "no motion, gripper open, in any action space"),
    "expert": PolicyEntry(
        "envs.experts.policy:expert_policy", "LIBERO scripted expert (privileged sim state)", env_bound=True
    ),
    "scripted_wave": PolicyEntry("deploy.policies:ScriptedWavePolicy", "DROID joint-velocity sine pattern"),
    "random_mlp": PolicyEntry(
        "deploy.policies:RandomMLPPolicy", "DROID tiny torch MLP, seeded random weights"
    ),
}


def register_policy(
    name: str, target: str, doc: str = "", *, env_bound: bool = False, replace: bool = False
) -> None:
    """Make `load_policy(name)` build `target` ("package.module:factory")."""
    if ":" in name or "/" in name:
        raise ValueError(f"policy name {name!r} must not contain ':' or '/'")
    if name in POLICIES and not replace:
        raise ValueError(
            f"policy {name!r} is already registered ({POLICIES[name].target}); pass replace=True"
        )
    _split_target(target)
    POLICIES[name] = PolicyEntry(target, doc, env_bound)


def unregister_policy(name: str) -> None:
    POLICIES.pop(name, None)


def is_checkpoint_dir(path: str | Path) -> bool:
    p = Path(path)
    return p.is_dir() and (p / CHECKPOINT_CONFIG).is_file()


def spec_kind(spec: str) -> str:
    """'remote', 'name', 'checkpoint' or 'factory' for a policy spec string, without building anything.

    Raises `PolicyLoadError` (one line naming the valid forms) for anything else, so a CLI can refuse a
    typo before it pays for a simulator.
    """
    if not isinstance(spec, str) or not spec:
        raise PolicyLoadError(f"a policy spec must be a non-empty string, got {spec!r}")
    if spec.startswith(REMOTE_SCHEMES):
        return "remote"
    if spec in POLICIES:
        return "name"
    path = Path(spec)
    if path.is_dir():
        if not is_checkpoint_dir(path):
            raise PolicyLoadError(f"directory {spec!r} is not a checkpoint: it has no {CHECKPOINT_CONFIG}")
        return "checkpoint"
    if ":" in spec and "/" not in spec:
        _split_target(spec)
        return "factory"
    raise PolicyLoadError(
        f"unknown policy {spec!r}; valid: {', '.join(POLICIES)}, 'package.module:factory', "
        "a checkpoint directory, or tcp://host:port"
    )


def is_env_bound(spec: str) -> bool:
    return spec in POLICIES and POLICIES[spec].env_bound


def load_policy(
    spec: str | Policy, *, env: Any = None, action_space: str | None = None, **kwargs: Any
) -> Policy:
    """Build the policy named by `spec` (see the module table); a Policy object is passed through.

    `env`: the simulator the policy will act in (env-bound policies need it). `action_space`: what the
    consumer executes; the policy is refused (`ConventionError`) when its spec does not fit.
    """
    if not isinstance(spec, str):
        policy = spec
    else:
        kind = spec_kind(spec)
        if kind == "remote":
            policy = _call(_import(REMOTE_FACTORY), spec, env, action_space, {"address": spec, **kwargs})
        elif kind == "checkpoint":
            try:
                from vla.models.checkpoint import load_policy_dir
            except ImportError as e:
                raise PolicyLoadError(
                    f"{spec!r} is a checkpoint directory, but vla.models.checkpoint cannot be imported ({e})"
                ) from e
            from vla.interop.lerobot.policy_adapter import is_lerobot_checkpoint

            if is_lerobot_checkpoint(spec):  # pion-train model=lerobot checkpoint
                from vla.interop.lerobot.protocol_policy import load_lerobot_policy

                policy = load_lerobot_policy(spec, **kwargs)
            else:
                policy = load_policy_dir(spec, **kwargs)
        else:
            entry = POLICIES.get(spec)
            if entry is not None and entry.env_bound and env is None:
                raise PolicyLoadError(
                    f"policy {spec!r} reads the state of the simulator it acts in: pass env="
                )
            policy = _call(_import(entry.target if entry else spec), spec, env, action_space, kwargs)
    try:
        if not isinstance(policy, Policy):
            raise PolicyLoadError(
                f"{spec!r} built a {type(policy).__name__}, which is not a vla.protocol.Policy"
            )
        if action_space is not None:
            check_fits(policy.spec, action_space, where=f"a {action_space} executor")
    except Exception:
        if isinstance(spec, str) and callable(getattr(policy, "close", None)):
            policy.close()  # refused: release what we built (a served policy's socket and context)
        raise
    return policy


def _split_target(target: str) -> tuple[str, str]:
    module, _, attr = target.partition(":")
    if not module or not attr:
        raise PolicyLoadError(f"policy factory {target!r} must look like 'package.module:factory'")
    return module, attr


def _import(target: str) -> Callable[..., Any]:
    module, attr = _split_target(target)
    try:
        obj: Any = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as e:
        raise PolicyLoadError(f"cannot load policy factory {target!r}: {e}") from e
    if not callable(obj):
        raise PolicyLoadError(f"policy factory {target!r} is not callable")
    return obj


def _call(factory: Callable[..., Any], spec: str, env: Any, space: str | None, kwargs: Mapping[str, Any]):
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        params = {}
    extra = {}
    if env is not None and "env" in params:
        extra["env"] = env
    if space is not None and "action_space" in params:
        extra["action_space"] = space
    try:
        return factory(**extra, **kwargs)
    except TypeError as e:
        raise PolicyLoadError(f"policy {spec!r} does not take these arguments {sorted(kwargs)}: {e}") from e


class HoldStillPolicy:
    """Keeps the robot still with the gripper open, in any action space: a baseline that never succeeds
    and the safe smoke test of a robot loop. `gripper` overrides the gripper value (executor convention)."""

    def __init__(
        self,
        action_space: str = LIBERO_OSC_DELTA,
        chunk_len: int = 8,
        n_action_steps: int | None = None,
        gripper: float | None = None,
        image_size: int | None = None,
    ) -> None:
        from vla.conventions import make_spec

        self.spec: PolicySpec = make_spec(
            action_space, "hold", chunk_len, n_action_steps, image_size=image_size
        )
        self.action = get_action_space(action_space).hold_action.copy()
        if gripper is not None:
            self.action[-1] = float(gripper)

    def reset(self) -> None:
        pass

    def predict_chunk(self, batch) -> np.ndarray:
        b = validate_batch(self.spec, batch)
        return np.broadcast_to(self.action, (b, self.spec.chunk_len, self.spec.action_dim)).copy()


def stack_batches(batches: list[Mapping[str, Any]], keys: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Concatenate protocol batches along B (state, images) and join their task lists: one request to a
    policy shared by several callers (eval workers, server clients). `keys`: only these array keys."""
    from vla.protocol import STATE_KEY, TASK_KEY

    names = [k for k in batches[0] if k != TASK_KEY] if keys is None else [STATE_KEY, *keys]
    out: dict[str, Any] = {k: np.concatenate([np.asarray(b[k]) for b in batches], axis=0) for k in names}
    if STATE_KEY in out:
        out[STATE_KEY] = out[STATE_KEY].astype(np.float32, copy=False)  # the protocol's state dtype
    out[TASK_KEY] = [t for b in batches for t in b[TASK_KEY]]
    return out
