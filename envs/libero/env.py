"""One LIBERO task as a gymnasium environment that follows the standard evaluation protocol.

    env = LiberoEnv("libero_object", task_id=0)          # agentview + wrist at 256x256
    obs, info = env.reset(options={"init_state": 0})     # fixed init state 0, then 10 wait steps
    obs, reward, terminated, truncated, info = env.step(action)

Observations use the keys of the public `lerobot/libero` data and of `vla.protocol`:
`observation.images.image` (agentview), `observation.images.image2` (wrist), both rotated 180 degrees;
`observation.state` (8-D); `task` (the instruction). `terminated` is the task's success predicate,
`truncated` means the suite's step budget is used up.

Rendering dominates the cost of a step (two cameras on a software GL ~100 ms vs ~10 ms unrendered),
so images are rendered on demand: never during wait steps, and only on steps called with
`render=True`. Every image, whether recorded for a dataset or fed to a policy, comes from the same
function (`render_images`) at the same point of the step: after physics.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from envs.libero.constants import (
    ACTION_DIM,
    CAMERA_KEYS,
    DEFAULT_CAMERAS,
    DEFAULT_ENV_SEED,
    DEFAULT_RESOLUTION,
    MAX_STEPS,
    NUM_WAIT_STEPS,
    STATE_DIM,
    WAIT_ACTION,
)
from envs.libero.conventions import libero_state, rotate_180
from envs.libero.tasks import UnknownTaskError, get_task, load_init_states


class LiberoEnv(gym.Env):
    metadata = {"render_modes": ["rgb_array"]}

    def __init__(
        self,
        suite: str,
        task_id: int,
        *,
        cameras: tuple[str, ...] | list[str] = DEFAULT_CAMERAS,
        resolution: int = DEFAULT_RESOLUTION,
        max_steps: int | None = None,
        num_wait_steps: int = NUM_WAIT_STEPS,
        env_seed: int = DEFAULT_ENV_SEED,
        hard_reset: bool = False,
    ) -> None:
        unknown = [c for c in cameras if c not in CAMERA_KEYS]
        if unknown:
            raise ValueError(f"unknown cameras {unknown}; valid: {list(CAMERA_KEYS)}")
        if resolution <= 0:
            raise ValueError(f"resolution must be positive, got {resolution}")
        self.task = get_task(suite, task_id)
        self.cameras = tuple(cameras)
        self.resolution = int(resolution)
        self.max_steps = int(max_steps if max_steps is not None else MAX_STEPS[suite])
        self.num_wait_steps = int(num_wait_steps)
        self.init_states = load_init_states(self.task)

        from libero.libero.envs import OffScreenRenderEnv

        # Cameras are rendered by us, on demand, not by robosuite's observables on every step.
        self.raw = OffScreenRenderEnv(
            bddl_file_name=self.task.bddl_file,
            camera_heights=self.resolution,
            camera_widths=self.resolution,
            camera_names=list(self.cameras) or ["agentview"],
            use_camera_obs=False,
            has_offscreen_renderer=bool(self.cameras),
            hard_reset=hard_reset,
        )
        self.raw.seed(env_seed)
        self._raw_obs: dict[str, np.ndarray] = {}
        self.elapsed_steps = 0

        image_space = gym.spaces.Box(0, 255, (self.resolution, self.resolution, 3), np.uint8)
        self.observation_space = gym.spaces.Dict(
            {CAMERA_KEYS[c]: image_space for c in self.cameras}
            | {"observation.state": gym.spaces.Box(-np.inf, np.inf, (STATE_DIM,), np.float32)}
        )
        self.action_space = gym.spaces.Box(-1.0, 1.0, (ACTION_DIM,), np.float32)

    # ---------------------------------------------------------------- observations
    def render_camera(self, camera: str) -> np.ndarray:
        """One camera, rendered now, in the dataset convention (the OpenGL frame rotated 180 degrees)."""
        return rotate_180(
            self.raw.sim.render(width=self.resolution, height=self.resolution, camera_name=camera)
        )

    def render_images(self) -> dict[str, np.ndarray]:
        """Render every requested camera, keyed like the datasets."""
        return {CAMERA_KEYS[cam]: self.render_camera(cam) for cam in self.cameras}

    def state(self) -> np.ndarray:
        o = self._raw_obs
        return libero_state(o["robot0_eef_pos"], o["robot0_eef_quat"], o["robot0_gripper_qpos"])

    def _observation(self, render: bool) -> dict[str, Any]:
        obs: dict[str, Any] = {"observation.state": self.state(), "task": self.task.language}
        if render:
            obs |= self.render_images()
        return obs

    # ---------------------------------------------------------------- gym API
    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        """Reset to a fixed init state (options["init_state"], default 0), then run the wait steps.

        options["render"] (default True) renders the first observation's images.
        """
        super().reset(seed=seed)
        options = options or {}
        idx = int(options.get("init_state", 0))
        if not 0 <= idx < len(self.init_states):
            raise UnknownTaskError(
                f"init state {idx} out of range for {self.task.suite}/{self.task.task_id} (valid 0..{len(self.init_states) - 1})"
            )
        if seed is not None:
            self.raw.seed(seed)
        self.raw.reset()
        if not self.raw.env.hard_reset:
            self._clear_soft_reset_residue()
        self._raw_obs = self.raw.set_init_state(self.init_states[idx])
        success = False
        for _ in range(self.num_wait_steps):
            self._raw_obs, _, success, _ = self.raw.step(WAIT_ACTION)
        self.elapsed_steps = 0
        info = {"task": self.task.language, "init_state": idx, "is_success": bool(success)}
        return self._observation(options.get("render", True)), info

    def _clear_soft_reset_residue(self) -> None:
        """A soft reset (no model rebuild: ~0.2 s instead of ~2.5 s) keeps the gripper models' smoothed
        command from the previous episode; a hard reset rebuilds it as zeros. Zero it so both resets
        give bit-identical episodes (tested)."""
        for robot in self.raw.env.robots:
            if robot.has_gripper:
                robot.gripper.current_action = np.zeros_like(robot.gripper.current_action)

    def step(self, action: np.ndarray, render: bool = True) -> tuple[dict, float, bool, bool, dict]:
        action = np.asarray(action, dtype=np.float64)
        if action.shape != (ACTION_DIM,):
            raise ValueError(f"action shape {action.shape} != ({ACTION_DIM},)")
        if not np.all(np.isfinite(action)):
            raise ValueError(f"refusing to execute a non-finite action: {action}")
        self._raw_obs, _, done, _ = self.raw.step(np.clip(action, -1.0, 1.0))
        self.elapsed_steps += 1
        success = bool(done)
        truncated = not success and self.elapsed_steps >= self.max_steps
        info = {"is_success": success, "elapsed_steps": self.elapsed_steps}
        return self._observation(render), float(success), success, truncated, info

    def render(self) -> np.ndarray:  # gymnasium's render(): the agentview frame
        return self.render_camera("agentview")

    def close(self) -> None:
        """Release the simulator and its GL context explicitly (avoids EGL teardown noise at exit)."""
        raw = self.__dict__.pop("raw", None)
        if raw is not None:
            raw.close()
