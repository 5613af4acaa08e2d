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


def run_episode(
    env,
    policy: Policy,
    init_state: int,
    *,
    video_fps: float | None = None,
    on_step: Callable[[int], None] | None = None,
) -> EpisodeResult:
    """Reset `env` to `init_state`, then act with `policy` until success or the step budget runs out."""
    spec = policy.spec
    needs_images = bool(spec.image_shapes)
    frame_every = max(1, round(CONTROL_HZ / video_fps)) if video_fps else 0
    frames: list[np.ndarray] = []
    start = time.perf_counter()
    policy.reset()
    obs, info = env.reset(options={"init_state": init_state, "render": needs_images})
    if frame_every:
        frames.append(env.render_camera("agentview"))
    success, steps, queries = bool(info.get("is_success", False)), 0, 0
    try:
        while not success and steps < env.max_steps:
            chunk = validate_chunk(spec, policy.predict_chunk(_as_batch(obs)), batch=1)[0]
            queries += 1
            n_exec = spec.steps_per_query
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
