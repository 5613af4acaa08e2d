"""The one policy protocol: an observation batch in, an action chunk out.

Every consumer of a policy speaks this protocol and nothing else: the trainer's eval hook, the
LIBERO evaluation harness (`envs`), and the ZeroMQ policy server (`deploy`). Scripted experts,
trained checkpoints and remote (served) policies all implement it.

Observation batch (a plain dict, numpy arrays, leading batch dimension B):
    "observation.images.<name>"  uint8  (B, H, W, 3)   RGB, already in the policy's convention
                                                       (LIBERO: rotated 180 degrees, like the datasets)
    "observation.state"          float32 (B, S)         unnormalised; normalisation is the policy's job
    "task"                       list[str] of length B  the language instruction

Action chunk: float32 (B, T, A), unnormalised, in the action space named by `PolicySpec.action_space`
(for LIBERO: 7-D OSC delta, gripper -1 open / +1 close). The caller executes the first
`n_action_steps` actions open-loop, then queries again.

Optional keys (a policy that does not use them ignores them; real-time chunking, `docs/DESIGN.md`):
    "action.pending"             float32 (B, P, A)      the actions the caller still has queued, aligned so that
                                                       row 0 is the action for the step of this observation
                                                       (unnormalised, in the policy's own action space)
    "action.pending_delay"       int64 (B,)             how many of them will have been executed when the new
                                                       chunk takes over (the inference delay in steps)

The keys match LeRobot's LIBERO datasets, so a batch from a `LeRobotDataset` and a batch from the
simulator look the same to a policy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

IMAGE_PREFIX = "observation.images."
STATE_KEY = "observation.state"
TASK_KEY = "task"
PENDING_ACTIONS_KEY = "action.pending"
PENDING_DELAY_KEY = "action.pending_delay"


class ProtocolError(ValueError):
    """A batch or an action chunk does not match the policy's declared spec."""


@dataclass(frozen=True)
class PolicySpec:
    """What a policy consumes and produces; sent to clients in the server handshake."""

    policy_id: str
    action_space: str  # e.g. "libero_osc_delta" or "droid_joint_velocity"
    action_dim: int
    chunk_len: int
    state_dim: int
    image_shapes: Mapping[str, tuple[int, int, int]] = field(default_factory=dict)  # full key -> (H, W, 3)
    n_action_steps: int | None = None  # executed open-loop per query; None -> chunk_len
    control_hz: float | None = None
    gripper_convention: str = "libero_raw"  # see envs.libero.conventions

    def __post_init__(self) -> None:
        if self.action_dim <= 0 or self.chunk_len <= 0 or self.state_dim < 0:
            raise ValueError(f"invalid PolicySpec dims: {self}")
        n = self.n_action_steps
        if n is not None and not 1 <= n <= self.chunk_len:
            raise ValueError(f"n_action_steps={n} must be in [1, chunk_len={self.chunk_len}]")
        for key in self.image_shapes:
            if not key.startswith(IMAGE_PREFIX):
                raise ValueError(f"image key {key!r} must start with {IMAGE_PREFIX!r}")

    @property
    def steps_per_query(self) -> int:
        return self.n_action_steps or self.chunk_len

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["image_shapes"] = {k: list(v) for k, v in self.image_shapes.items()}
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PolicySpec:
        d = dict(d)
        d["image_shapes"] = {k: tuple(int(x) for x in v) for k, v in d.get("image_shapes", {}).items()}
        return cls(**d)


@runtime_checkable
class Policy(Protocol):
    """Anything that maps an observation batch to an action chunk."""

    spec: PolicySpec

    def reset(self) -> None:
        """Forget per-episode state (action queues, histories)."""

    def predict_chunk(self, batch: Mapping[str, Any]) -> np.ndarray:
        """Return a float32 (B, chunk_len, action_dim) action chunk for an observation batch."""


def batch_size(batch: Mapping[str, Any]) -> int:
    if STATE_KEY in batch:
        return int(np.shape(batch[STATE_KEY])[0])
    return len(batch[TASK_KEY])


def validate_batch(spec: PolicySpec, batch: Mapping[str, Any]) -> int:
    """Check a batch against a spec; return B. Raises ProtocolError naming the offending key."""
    if not isinstance(batch, Mapping):
        raise ProtocolError(f"observation batch must be a mapping, got {type(batch).__name__}")
    missing = [k for k in (STATE_KEY, TASK_KEY, *spec.image_shapes) if k not in batch]
    if missing:
        raise ProtocolError(f"missing keys {missing}; expected {[STATE_KEY, TASK_KEY, *spec.image_shapes]}")
    state = batch[STATE_KEY]
    if not isinstance(state, np.ndarray) or state.dtype.kind != "f":
        raise ProtocolError(f"{STATE_KEY} must be a float ndarray, got {type(state).__name__}")
    if state.ndim != 2 or state.shape[1] != spec.state_dim:
        raise ProtocolError(f"{STATE_KEY} shape {state.shape} != (B, {spec.state_dim})")
    if not np.all(np.isfinite(state)):
        raise ProtocolError(f"{STATE_KEY} contains NaN or inf")
    b = state.shape[0]
    if b == 0:
        raise ProtocolError("empty batch")
    tasks = batch[TASK_KEY]
    if not isinstance(tasks, list | tuple) or len(tasks) != b or not all(isinstance(t, str) for t in tasks):
        raise ProtocolError(f"{TASK_KEY} must be a list of {b} strings")
    for key, shape in spec.image_shapes.items():
        img = batch[key]
        if not isinstance(img, np.ndarray) or img.dtype != np.uint8:
            raise ProtocolError(f"{key} must be a uint8 ndarray, got {getattr(img, 'dtype', type(img))}")
        if img.shape != (b, *shape):
            raise ProtocolError(f"{key} shape {img.shape} != {(b, *shape)}")
    return b


def validate_chunk(spec: PolicySpec, chunk: Any, batch: int) -> np.ndarray:
    """Check a policy output; return it as float32. NaN/inf actions are refused, never executed."""
    arr = np.asarray(chunk)
    expected = (batch, spec.chunk_len, spec.action_dim)
    if arr.shape != expected:
        raise ProtocolError(f"action chunk shape {arr.shape} != {expected}")
    if arr.dtype.kind not in "fiu":
        raise ProtocolError(f"action chunk dtype {arr.dtype} is not numeric")
    arr = arr.astype(np.float32, copy=False)
    if not np.all(np.isfinite(arr)):
        raise ProtocolError("action chunk contains NaN or inf")
    return arr
