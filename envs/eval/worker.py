"""A worker process: owns one LIBERO env at a time, runs the episodes the parent sends, reports records.

Protocol on the worker's pipe (parent -> worker): {"episode": dict, "attempt": int, "video": bool} or None
(stop). Worker -> parent: ("obs", batch) when the policy lives in the parent (answered with
("chunk", array) or ("error", str)), and ("done", record) when an episode ends,
("failed", {"reason", "retry"}) when it could not run (env or policy could not be built). The env is rebuilt
only when the task changes; it is closed explicitly before the process exits.
"""

from __future__ import annotations

import os
import random
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from envs.eval.episodes import Episode
from envs.eval.results import SCHEMA_VERSION


@dataclass
class WorkerConfig:
    policy: str
    policy_kwargs: dict = field(default_factory=dict)
    placement: str = "worker"  # or "parent" (then parent_spec is set)
    parent_spec: object = None
    resolution: int = 256
    max_steps: int | None = None  # None: the suite's standard budget
    env_seed: int = 0  # env.seed() before every reset: episodes do not depend on what ran before
    n_action_steps: int | None = None
    temporal_ensemble: float | None = None
    video_fps: float = 10.0
    video_dir: str | None = None
    n_workers: int = 1  # rendering processes sharing the machine (sets llvmpipe's thread count)


class PolicyBuildError(RuntimeError):
    """The policy cannot be built for this task (a configuration error): not retried."""


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    try:
        import torch

        torch.manual_seed(seed)
    except ImportError:
        pass


def _episode_seed(ep: Episode) -> int:
    return (ep.seed * 1_000_003 + ep.stable_hash()) % 2**31


class _Runner:
    def __init__(self, conn, cfg: WorkerConfig) -> None:
        self.conn, self.cfg = conn, cfg
        self.env = None
        self.task_key = None
        self.policy = None

    def _ensure_env(self, ep: Episode) -> None:
        if self.task_key == ep.task_key:
            return
        self.close()
        from envs.eval.policies import ProxyPolicy
        from envs.libero import make_env
        from vla.conventions import LIBERO_OSC_DELTA
        from vla.policies import load_policy

        self.env = make_env(
            ep.suite, ep.task_id, resolution=self.cfg.resolution, max_steps=self.cfg.max_steps
        )
        self.task_key = ep.task_key
        if self.cfg.placement == "parent":
            self.policy = ProxyPolicy(self.conn, self.cfg.parent_spec)
        else:
            try:
                self.policy = load_policy(
                    self.cfg.policy, env=self.env, action_space=LIBERO_OSC_DELTA, **self.cfg.policy_kwargs
                )
            except (ValueError, TypeError, NotImplementedError, ImportError) as e:
                raise PolicyBuildError(
                    f"policy {self.cfg.policy!r} cannot act in {ep.suite}/{ep.task_id}: {e}"
                ) from e

    def run(self, ep: Episode, attempt: int, video: bool) -> dict:
        from envs.rollout import run_episode, write_video

        self._ensure_env(ep)
        env = self.env
        builtin = ep.perturbation != "none" and not ep.perturbation.startswith(
            "plus-"
        )  # plus-*: the env is the variant
        if builtin or "_pion_pristine" in self.env.__dict__:  # a clean episode after a perturbed one: restore
            from envs.eval.perturb import perturbed_env

            env = perturbed_env(
                self.env, ep.perturbation if builtin else "none", ep.severity, _episode_seed(ep)
            )
        _seed_everything(_episode_seed(ep))
        res = run_episode(
            env,
            self.policy,
            ep.init_state,
            video_fps=self.cfg.video_fps if video else None,
            reset_seed=self.cfg.env_seed,
            n_action_steps=self.cfg.n_action_steps,
            temporal_ensemble=self.cfg.temporal_ensemble,
        )
        video_path = None
        if video and res.frames and self.cfg.video_dir:
            name = ep.key.replace("/", "_") + ("_success" if res.success else "_failure") + ".mp4"
            video_path = str(Path(self.cfg.video_dir) / name)
            write_video(res.frames, video_path, self.cfg.video_fps)
        return {
            "schema": SCHEMA_VERSION,
            "key": ep.key,
            **ep.to_dict(),
            "task": self.env.task.language,
            "instruction": getattr(env, "instruction", self.env.task.language),
            "detail": getattr(env, "detail", ""),
            "success": bool(res.success),
            "steps": int(res.steps),
            "queries": int(res.queries),
            "seconds": round(float(res.seconds), 3),
            "attempts": attempt,
            "error": res.error,
            "video": video_path,
            "worker_pid": os.getpid(),
        }

    def close(self) -> None:
        if self.env is not None:
            self.env.close()
        self.env, self.task_key, self.policy = None, None, None


def worker_main(conn, cfg: WorkerConfig) -> None:
    """Entry point of a spawned worker process."""
    os.environ.setdefault("MUJOCO_GL", "egl")
    from envs.libero_bootstrap import share_cores_between_renderers

    share_cores_between_renderers(cfg.n_workers)
    runner = _Runner(conn, cfg)
    try:
        while True:
            try:
                msg = conn.recv()
            except (EOFError, KeyboardInterrupt):
                break
            if msg is None:
                break
            ep = Episode.from_dict(msg["episode"])
            try:
                record = runner.run(ep, msg["attempt"], msg.get("video", False))
            except Exception as e:  # noqa: BLE001 - env build failures etc. are reported, the worker lives on
                retry = not isinstance(e, PolicyBuildError)
                detail = traceback.format_exc(limit=5) if retry else ""
                conn.send(("failed", {"reason": f"{type(e).__name__}: {e}\n{detail}", "retry": retry}))
                runner.close()
                continue
            conn.send(("done", record))
    finally:
        runner.close()
        conn.close()
