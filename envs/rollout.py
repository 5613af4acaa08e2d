"""The one simulation episode loop: a protocol policy acts in a LIBERO env until success or the step budget.

Rollout (`pion-rollout`), evaluation workers (`pion-eval`), expert sweeps (`envs.experts.evaluate`) and
demonstration recording (`envs.datagen.record`) all call `run_episode` and get one `EpisodeResult`.

Before the first step the policy's spec is checked against the env's action space
(`vla.conventions.check_fits`): another action space is refused with a message naming both; a declared
non-LIBERO gripper convention is converted. Chunks run through the shared `vla.chunking.ChunkExecutor`
(open loop, or temporal ensembling). The loop renders only when someone looks: when the policy will
read the next observation (it takes images), when a video frame is due, or every step for recording.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from vla.chunking import ChunkExecutor
from vla.conventions import LIBERO_CONTROL_HZ, LIBERO_OSC_DELTA, check_fits, gripper_converter
from vla.protocol import IMAGE_PREFIX, STATE_KEY, TASK_KEY, Policy, validate_chunk

StepCallback = Callable[[dict, np.ndarray, dict], None]  # (observation before the step, action, step info)


@dataclass
class EpisodeResult:
    suite: str
    task_id: int
    init_state: int
    success: bool
    steps: int  # policy steps executed (wait steps excluded)
    phase: str = ""  # the policy's diagnostic phase at the end (scripted expert), "" if it has none
    queries: int = 0  # policy calls
    seconds: float = 0.0
    error: str | None = None  # an exception ends the episode as a failure (standard protocol)
    frames: list[np.ndarray] = field(default_factory=list, repr=False)  # agentview video frames, if requested


def as_batch(obs: dict) -> dict:
    """One env observation -> a protocol batch of size 1."""
    batch = {k: v[None] for k, v in obs.items() if k.startswith(IMAGE_PREFIX)}
    batch[STATE_KEY] = np.asarray(obs[STATE_KEY], dtype=np.float32)[None]
    batch[TASK_KEY] = [obs[TASK_KEY]]
    return batch


def run_episode(
    env,
    policy: Policy,
    init_state: int,
    *,
    n_action_steps: int | None = None,
    temporal_ensemble: float | None = None,
    render: bool = False,
    video_fps: float | None = None,
    on_step: StepCallback | None = None,
    reset_seed: int | None = None,
) -> EpisodeResult:
    """Reset `env` to `init_state`, then act with `policy` until success or the env's step budget.

    `n_action_steps` overrides the policy's open-loop steps per query (clamped to its chunk length);
    `temporal_ensemble=k` queries every step (ACT). `render=True` renders the cameras at every step (the
    observations given to `on_step` then carry images, as a recorded demonstration needs).
    `reset_seed` re-seeds the env at reset, so episodes do not depend on earlier ones in the process.
    A policy that raises ends the episode as a failure with the reason in `error`; a policy that does not
    fit the env (`ConventionError`) is refused before the episode starts.
    """
    spec = policy.spec
    check_fits(spec, LIBERO_OSC_DELTA, where=f"LIBERO {env.task.suite}/{env.task.task_id}")
    convert = gripper_converter(spec, LIBERO_OSC_DELTA)
    steps_per_query = min(n_action_steps or spec.steps_per_query, spec.chunk_len)
    executor = ChunkExecutor(steps_per_query, temporal_ensemble)
    needs_images = bool(spec.image_shapes)
    frame_every = max(1, round(LIBERO_CONTROL_HZ / video_fps)) if video_fps else 0
    frames: list[np.ndarray] = []
    start = time.perf_counter()
    policy.reset()
    executor.reset()
    obs, info = env.reset(
        seed=reset_seed, options={"init_state": init_state, "render": render or needs_images}
    )
    if frame_every:
        frames.append(env.render_camera("agentview"))
    success, steps, queries, error = bool(info.get("is_success", False)), 0, 0, None
    try:
        while not success and steps < env.max_steps:
            if executor.needs_query():
                chunk = validate_chunk(spec, policy.predict_chunk(as_batch(obs)), batch=1)[0]
                executor.push(convert(chunk) if convert else chunk)
                queries += 1
            action = executor.pop()
            look = render or (needs_images and executor.needs_query())
            next_obs, _, terminated, truncated, step_info = env.step(action, render=look)
            steps += 1
            if on_step is not None:
                on_step(obs, action, step_info)
            obs, success = next_obs, bool(terminated)
            if frame_every and steps % frame_every == 0:
                frames.append(env.render_camera("agentview"))
            if truncated:
                break
    except Exception as e:  # noqa: BLE001 - the protocol counts a crashed episode as a failure, with the reason
        error = f"{type(e).__name__}: {e}"
        success = False
    return EpisodeResult(
        env.task.suite,
        env.task.task_id,
        int(init_state),
        success,
        steps,
        phase=str(getattr(policy, "phase", "")),
        queries=queries,
        seconds=time.perf_counter() - start,
        error=error,
        frames=frames,
    )


def write_video(frames: list[np.ndarray], path, fps: float) -> None:
    """Write RGB frames as an H.264 MP4 (imageio's bundled ffmpeg; no system ffmpeg needed)."""
    import imageio.v2 as imageio

    with imageio.get_writer(str(path), fps=fps, codec="libx264", quality=7, macro_block_size=1) as w:
        for f in frames:
            w.append_data(f)
