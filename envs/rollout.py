"""Run one episode of a protocol policy in a LIBERO env, rendering only when someone looks.

The loop knows when the policy will next read an observation (after the wait steps, then once per
open-loop chunk) and when a video frame is due; every other step runs the simulator without cameras.
This is the single-episode core that the rollout CLI and the evaluation harness share.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from envs.libero.constants import CONTROL_HZ
from vla.protocol import IMAGE_PREFIX, Policy, validate_chunk


@dataclass
class EpisodeResult:
    success: bool
    steps: int  # policy steps executed (wait steps excluded)
    queries: int  # policy calls
    seconds: float
    frames: list[np.ndarray] = field(default_factory=list)  # agentview video frames, if requested
    error: str | None = None  # an exception ends the episode as a failure (standard protocol)


def _as_batch(obs: dict) -> dict:
    """One env observation -> a protocol batch of size 1."""
    batch = {k: v[None] for k, v in obs.items() if k.startswith(IMAGE_PREFIX)}
    batch["observation.state"] = obs["observation.state"][None].astype(np.float32)
    batch["task"] = [obs["task"]]
    return batch


class TemporalEnsembler:
    """ACT-style temporal ensembling: query every step, execute the weighted mean of every chunk's
    prediction for the current step, weight exp(-k * i) with i = 0 for the oldest prediction."""

    def __init__(self, k: float) -> None:
        self.k = float(k)
        self.chunks: list[np.ndarray] = []  # chunk predicted i steps ago is chunks[-1 - i]

    def __call__(self, chunk: np.ndarray) -> np.ndarray:
        self.chunks.append(chunk)
        n = len(chunk)
        self.chunks = self.chunks[-n:]  # older chunks no longer cover the current step
        preds = [c[len(self.chunks) - 1 - j] for j, c in enumerate(self.chunks)]  # oldest first
        w = np.exp(-self.k * np.arange(len(preds)))
        return (np.tensordot(w / w.sum(), np.stack(preds), axes=1)).astype(np.float32)


def run_episode(
    env,
    policy: Policy,
    init_state: int,
    *,
    video_fps: float | None = None,
    on_step: Callable[[int], None] | None = None,
    reset_seed: int | None = None,
    temporal_ensemble: float | None = None,
) -> EpisodeResult:
    """Reset `env` to `init_state`, then act with `policy` until success or the step budget runs out.

    `reset_seed` re-seeds the env at reset (episodes then do not depend on earlier ones in the same
    process). `temporal_ensemble=k` queries the policy every step and executes the exp(-k i)-weighted
    mean of all chunks' predictions for that step (ACT); otherwise the first `spec.steps_per_query`
    actions of each chunk run open-loop.
    """
    spec = policy.spec
    needs_images = bool(spec.image_shapes)
    ensemble = TemporalEnsembler(temporal_ensemble) if temporal_ensemble is not None else None
    frame_every = max(1, round(CONTROL_HZ / video_fps)) if video_fps else 0
    frames: list[np.ndarray] = []
    start = time.perf_counter()
    policy.reset()
    obs, info = env.reset(seed=reset_seed, options={"init_state": init_state, "render": needs_images})
    if frame_every:
        frames.append(env.render_camera("agentview"))
    success, steps, queries = bool(info.get("is_success", False)), 0, 0
    try:
        while not success and steps < env.max_steps:
            chunk = validate_chunk(spec, policy.predict_chunk(_as_batch(obs)), batch=1)[0]
            queries += 1
            if ensemble is not None:
                chunk = ensemble(chunk)[None]
            n_exec = 1 if ensemble is not None else spec.steps_per_query
            for i, action in enumerate(chunk[:n_exec]):
                last_of_chunk = i == n_exec - 1
                obs, _, success, truncated, _ = env.step(action, render=needs_images and last_of_chunk)
                steps += 1
                if frame_every and steps % frame_every == 0:
                    frames.append(env.render_camera("agentview"))
                if on_step:
                    on_step(steps)
                if success or truncated:
                    break
    except Exception as e:  # noqa: BLE001 - the protocol counts a crashed episode as a failure, with the reason
        return EpisodeResult(False, steps, queries, time.perf_counter() - start, frames, f"{type(e).__name__}: {e}")
    return EpisodeResult(success, steps, queries, time.perf_counter() - start, frames)


def write_video(frames: list[np.ndarray], path, fps: float) -> None:
    """Write RGB frames as an H.264 MP4 (imageio's bundled ffmpeg; no system ffmpeg needed)."""
    import imageio.v2 as imageio

    with imageio.get_writer(str(path), fps=fps, codec="libx264", quality=7, macro_block_size=1) as w:
        for f in frames:
            w.append_data(f)
