"""Real-time chunking (RTC): inference-time prefix guidance for flow-matching policies.

Black, Galliker, Levine (2025), "Real-Time Execution of Action Chunking Flow Policies"; lerobot `policies/rtc`.
While a chunk is being sampled the robot keeps executing the previous one, so the first actions of the new chunk
overlap actions that are already queued ("pending") and, for the first `delay` of them, already decided. RTC
samples the new chunk as an inpainting problem: at every Euler step its predicted clean chunk is pulled toward the
pending actions, with a soft mask over the overlap, so consecutive chunks join without a jump.

Per Euler step, in this package's convention (t = 1 is noise, t = 0 is data, the network predicts v ≈ ε − a and
x moves by dt·v with dt = −1/N):

    x̂₀ = x − t·v(x, t)                           the chunk this step heads for
    g  = (∂x̂₀/∂x)ᵀ · (W ⊙ (Y − x̂₀))               a vector-Jacobian product through the action expert
    v' = v − w(t)·g                                x moves toward Y (dx = dt·v', dt < 0)
    w(t) = min(β, ((1 − t)² + t²) / (t·(1 − t)))    the paper's (1−τ)/(τ·r²_τ) with τ = 1 − t; β at t = 1

Y: the pending actions (normalised like the model's targets), aligned so that row 0 is the new chunk's step 0.
W (`prefix_weights`): 1 on the first `delay` steps (executed before the new chunk takes over), then a decay over
the rest of the pending actions (`schedule`: "exp" = the paper's c·(eᶜ − 1)/(e − 1), c = (P − i)/(P − d + 1);
"linear" = c; "ones"; "zeros"), 0 past them. β = `max_guidance_weight` (lerobot's default 10; the paper uses 5).

How the pending actions reach a policy: the optional observation keys `vla.protocol.PENDING_ACTIONS_KEY` /
`PENDING_DELAY_KEY` (`prefix_from_batch`); `FlowMatchingPolicy.sample_actions(prefix=)` is the model's hook.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from vla.models.flow_matching import flow
from vla.protocol import PENDING_ACTIONS_KEY, PENDING_DELAY_KEY

SCHEDULES = ("exp", "linear", "ones", "zeros")


@dataclass(frozen=True)
class RTCConfig:
    """Guidance knobs of the model side (the robot side sends the pending actions and the delay)."""

    max_guidance_weight: float = 10.0  # β: cap of w(t) (lerobot default 10; the RTC paper uses 5)
    schedule: str = "exp"  # soft mask over the pending actions after the delay: exp | linear | ones | zeros

    def __post_init__(self) -> None:
        if not self.max_guidance_weight > 0:
            raise ValueError(f"rtc max_guidance_weight must be > 0, got {self.max_guidance_weight}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"rtc schedule must be one of {SCHEDULES}, got {self.schedule!r}")


@dataclass
class ActionPrefix:
    """The pending actions of each batch row, normalised like the model's targets, and the delay in steps."""

    actions: torch.Tensor  # (B, P, A)
    delay: torch.Tensor  # (B,) int: steps of the new chunk that are executed from the old one


def prefix_weights(chunk_len: int, pending: int, delay: int, schedule: str = "exp") -> torch.Tensor:
    """Soft mask W (chunk_len,): 1 on steps < delay, `schedule` on delay <= i < pending, 0 from `pending` on."""
    if schedule not in SCHEDULES:
        raise ValueError(f"rtc schedule must be one of {SCHEDULES}, got {schedule!r}")
    p = min(max(int(pending), 0), chunk_len)
    d = min(max(int(delay), 0), p)
    w = torch.zeros(chunk_len)
    w[:d] = 1.0
    c = (p - torch.arange(d, p, dtype=torch.float32)) / (p - d + 1)  # in (0, 1), decreasing
    decay = {"exp": c * torch.expm1(c) / (math.e - 1), "linear": c, "ones": torch.ones_like(c)}
    w[d:p] = decay.get(schedule, torch.zeros_like(c))
    return w


def guidance_weight(t: float, max_weight: float) -> float:
    """w(t) = min(β, ((1 − t)² + t²) / (t(1 − t))); β at the ends of [0, 1], where the formula is infinite."""
    if t <= 0.0 or t >= 1.0:
        return float(max_weight)
    return float(min(max_weight, ((1 - t) ** 2 + t**2) / (t * (1 - t))))


def guided_velocity(
    velocity_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    t: torch.Tensor,
    target: torch.Tensor,
    weights: torch.Tensor,
    max_weight: float,
) -> torch.Tensor:
    """v − w(t)·(∂x̂₀/∂x)ᵀ(W ⊙ (Y − x̂₀)) at one Euler step; `target` Y and `weights` W broadcast to x (B, T, A)."""
    x = x.detach().requires_grad_(True)
    v = velocity_fn(x, t)
    x0 = flow.predicted_x0(x, t, v)
    (g,) = torch.autograd.grad(x0, x, grad_outputs=weights * (target - x0.detach()))
    return v.detach() - guidance_weight(float(t[0]), max_weight) * g


def guided_sample(
    head: Callable[..., torch.Tensor],
    condition: Sequence[Any],
    noise: torch.Tensor,
    num_steps: int,
    prefix: ActionPrefix,
    config: RTCConfig | None = None,
) -> torch.Tensor:
    """Euler sampling of `head(x, t, *condition)` with the prefix guidance (the model's RTC hook).

    Autograd runs through the action head only; it is switched on here even under `torch.no_grad` /
    `torch.inference_mode` (the condition tensors are cloned out of inference mode for that).
    """
    config = config or RTCConfig()
    b, t_len, a = noise.shape
    pending = prefix.actions[:, :t_len].float()
    if pending.ndim != 3 or pending.shape[0] != b or pending.shape[2] != a:
        raise ValueError(f"pending actions must be (B={b}, P, A={a}), got {tuple(prefix.actions.shape)}")
    p = pending.shape[1]
    delay = prefix.delay.reshape(-1).expand(b) if prefix.delay.numel() == 1 else prefix.delay.reshape(b)
    with torch.inference_mode(False), torch.enable_grad():
        weights = torch.stack([prefix_weights(t_len, p, int(d), config.schedule) for d in delay])
        weights = weights.to(noise.device)[..., None]  # (B, T, 1)
        target = torch.zeros(b, t_len, a, device=noise.device)
        target[:, :p] = pending.to(noise.device).clone()
        condition = _normal_tensors(condition)

        def velocity(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            return head(x, t, *condition).float()

        def guided(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            return guided_velocity(velocity, x, t, target, weights, config.max_guidance_weight)

        return flow.euler_sample(guided, noise.detach().clone().float(), num_steps).detach()


def prefix_from_batch(
    batch: Mapping[str, Any],
    normalize: Callable[[torch.Tensor], torch.Tensor],
    device: torch.device | str = "cpu",
) -> ActionPrefix | None:
    """The `ActionPrefix` of an observation batch carrying `PENDING_ACTIONS_KEY` (None without it, or empty).

    `normalize` maps the unnormalised (B, P, A) actions to the model's targets (the processor's
    `normalize_actions`); a missing `PENDING_DELAY_KEY` means a delay of 0.
    """
    if PENDING_ACTIONS_KEY not in batch:
        return None
    pending = torch.as_tensor(np.asarray(batch[PENDING_ACTIONS_KEY], np.float32))
    if pending.ndim != 3:
        raise ValueError(f"{PENDING_ACTIONS_KEY} must be (B, P, A), got shape {tuple(pending.shape)}")
    if pending.shape[1] == 0:
        return None
    if not torch.isfinite(pending).all():
        raise ValueError(f"{PENDING_ACTIONS_KEY} contains NaN or inf")
    delay = np.asarray(batch.get(PENDING_DELAY_KEY, 0))
    if delay.dtype.kind not in "iu" or delay.size not in (1, pending.shape[0]) or (delay < 0).any():
        raise ValueError(f"{PENDING_DELAY_KEY} must be one non-negative int per batch row, got {delay!r:.60}")
    return ActionPrefix(normalize(pending).to(device), torch.as_tensor(delay.astype(np.int64)).reshape(-1))


def _normal_tensors(obj: Any) -> Any:
    """Clones of the tensors in `obj` (nested lists/tuples) made outside inference mode, usable by autograd."""
    if torch.is_tensor(obj):
        return obj.detach().clone()
    if isinstance(obj, list | tuple):
        return type(obj)(_normal_tensors(o) for o in obj)
    return obj
