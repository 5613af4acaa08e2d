"""Built-in LIBERO-Plus style perturbation suite on plain LIBERO tasks: 7 categories x severity 1..5.

    camera      third-person camera orbit (azimuth/elevation) and field of view      (scene.camera)
    robot       arm initial joint offsets                                             (scene.robot_init)
    language    instruction paraphrases                                               (language.paraphrase)
    light       light intensity, colour and direction                                 (scene.light)
    background  floor / table / wall appearance                                       (scene.background)
    noise       agentview-only motion blur, Gaussian, zoom blur, fog, glass blur      (noise.corrupt)
    layout      distractor objects moved                                              (scene.layout)

`perturbed_env(env, category, severity, seed)` wraps a `LiberoEnv` for one episode; everything random
is drawn from `seed`, so an episode is reproducible. Category "none" only restores the pristine scene
(used for clean episodes in a worker whose env was perturbed before). The wrist camera is never corrupted by noise.
"""

from __future__ import annotations

import numpy as np

from envs.eval.perturb import language, noise, scene

CATEGORIES = ("camera", "robot", "language", "light", "background", "noise", "layout")
_SCENE = {
    "camera": scene.camera,
    "light": scene.light,
    "background": scene.background,
    "robot": scene.robot_init,
    "layout": scene.layout,
}
_SETTLES = ("robot", "layout")  # these move bodies: wait steps after the change
AGENTVIEW_KEY = "observation.images.image"


def expand_categories(categories: list[str]) -> list[str]:
    if categories in (["all"], "all"):
        return list(CATEGORIES)
    bad = [c for c in categories if c not in CATEGORIES]
    if bad:
        raise ValueError(f"unknown perturbation categories {bad}; valid: {', '.join(CATEGORIES)} (or 'all')")
    return list(categories)


class PerturbedEnv:
    """A `LiberoEnv` seen through one perturbation; same reset/step/render API as the env it wraps."""

    def __init__(self, env, category: str, severity: int, seed: int) -> None:
        if category not in (*CATEGORIES, "none"):
            raise ValueError(f"unknown perturbation {category!r}; valid: {', '.join(CATEGORIES)}")
        if category != "none" and not 1 <= int(severity) <= 5:
            raise ValueError(f"severity must be 1..5, got {severity}")
        self.env, self.category, self.severity, self.seed = env, category, int(severity), int(seed)
        self.instruction = env.task.language
        self.detail = ""
        self._noise_rng = None

    def __getattr__(self, name):  # max_steps, task, raw, cameras, ...
        return getattr(self.env, name)

    def _rng(self, salt: int) -> np.random.Generator:
        cat = (*CATEGORIES, "none").index(self.category)
        return np.random.default_rng([self.seed, salt, cat, self.severity])

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        options = dict(options or {})
        render = options.pop("render", True)
        obs, info = self.env.reset(seed=seed, options={**options, "render": False})
        scene.restore(self.env)  # model edits of earlier episodes survive reset: undo them first
        rng = self._rng(0)
        if self.category in _SCENE:
            self.detail = _SCENE[self.category](self.env, self.severity, rng)
            if self.category in _SETTLES:
                from envs.libero.constants import WAIT_ACTION

                for _ in range(self.env.num_wait_steps):
                    obs, _, success, _, _ = self.env.step(WAIT_ACTION, render=False)
                self.env.elapsed_steps = 0
                info["is_success"] = bool(success)
        elif self.category == "language":
            self.instruction = language.paraphrase(self.env.task.language, self.severity, rng)
            self.detail = f"instruction: {self.instruction!r}"
        elif self.category == "noise":
            self.kind = noise.NOISE_TYPES[int(rng.integers(len(noise.NOISE_TYPES)))]
            self.detail = f"{self.kind} severity {self.severity}"
        self._noise_rng = self._rng(1)
        if render:
            obs = obs | self.env.render_images()
        return self._view(obs), info

    def _view(self, obs: dict) -> dict:
        obs = dict(obs)
        obs["task"] = self.instruction
        if self.category == "noise" and AGENTVIEW_KEY in obs:
            obs[AGENTVIEW_KEY] = noise.corrupt(obs[AGENTVIEW_KEY], self.kind, self.severity, self._noise_rng)
        return obs

    def step(self, action, render: bool = True):
        obs, reward, terminated, truncated, info = self.env.step(action, render=render)
        return self._view(obs), reward, terminated, truncated, info

    def render_camera(self, camera: str) -> np.ndarray:
        img = self.env.render_camera(camera)
        if self.category == "noise" and camera == "agentview":
            img = noise.corrupt(img, self.kind, self.severity, self._noise_rng)
        return img

    def render_images(self) -> dict:
        return self._view(self.env.render_images())

    def close(self) -> None:
        self.env.close()


def perturbed_env(env, category: str, severity: int, seed: int) -> PerturbedEnv:
    return PerturbedEnv(env, category, severity, seed)
