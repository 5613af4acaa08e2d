"""Sensor noise on the third-person (agentview) image: LIBERO-Plus's 5 corruption types at severity 1..5.

Pure numpy/OpenCV on uint8 (H, W, 3) images; randomness comes from the generator passed in, so a
seeded episode sees the same noise frame after frame on every run.
"""

from __future__ import annotations

import cv2
import numpy as np

NOISE_TYPES = ("motion_blur", "gaussian", "zoom_blur", "fog", "glass_blur")  # LIBERO-Plus noise index order


def _motion_blur(img, sev, rng):
    length = 2 + 3 * sev
    kernel = np.zeros((length, length), np.float32)
    kernel[length // 2, :] = 1.0 / length
    angle = rng.uniform(-45, 45)
    rot = cv2.getRotationMatrix2D((length / 2 - 0.5, length / 2 - 0.5), angle, 1.0)
    kernel = cv2.warpAffine(kernel, rot, (length, length))
    return cv2.filter2D(img, -1, kernel / max(kernel.sum(), 1e-6))


def _gaussian(img, sev, rng):
    sigma = (0.04, 0.06, 0.08, 0.10, 0.13)[sev - 1] * 255
    return np.clip(img + rng.normal(0, sigma, img.shape), 0, 255).astype(np.uint8)


def _zoom_blur(img, sev, rng):
    h, w = img.shape[:2]
    acc = img.astype(np.float32)
    zooms = np.arange(1.0, 1.0 + 0.03 * sev + 1e-9, 0.01)[1:]
    for z in zooms:
        zh, zw = int(round(h * z)), int(round(w * z))
        big = cv2.resize(img, (zw, zh), interpolation=cv2.INTER_LINEAR)
        top, left = (zh - h) // 2, (zw - w) // 2
        acc += big[top : top + h, left : left + w]
    return np.clip(acc / (len(zooms) + 1), 0, 255).astype(np.uint8)


def _fog(img, sev, rng):
    h, w = img.shape[:2]
    strength = (0.25, 0.35, 0.45, 0.55, 0.65)[sev - 1]
    low = rng.random((max(2, h // 32), max(2, w // 32))).astype(np.float32)
    fog = cv2.resize(low, (w, h), interpolation=cv2.INTER_CUBIC)
    fog = cv2.GaussianBlur(fog, (0, 0), sigmaX=max(h, w) / 24)
    fog = (fog - fog.min()) / max(float(np.ptp(fog)), 1e-6)
    a = (strength * (0.6 + 0.4 * fog))[..., None]
    return np.clip(img * (1 - a) + 235 * a, 0, 255).astype(np.uint8)


def _glass_blur(img, sev, rng):
    sigma, radius = (0.6, 0.8, 1.0, 1.2, 1.5)[sev - 1], sev
    out = cv2.GaussianBlur(img, (0, 0), sigmaX=sigma)
    h, w = img.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w]
    ys = np.clip(ys + rng.integers(-radius, radius + 1, (h, w)), 0, h - 1)
    xs = np.clip(xs + rng.integers(-radius, radius + 1, (h, w)), 0, w - 1)
    return cv2.GaussianBlur(out[ys, xs], (0, 0), sigmaX=sigma)


_FUNCS = dict(zip(NOISE_TYPES, (_motion_blur, _gaussian, _zoom_blur, _fog, _glass_blur)))


def corrupt(img: np.ndarray, kind: str, severity: int, rng: np.random.Generator) -> np.ndarray:
    if kind not in _FUNCS:
        raise ValueError(f"unknown noise type {kind!r}; valid: {', '.join(NOISE_TYPES)}")
    if not 1 <= severity <= 5:
        raise ValueError(f"noise severity must be 1..5, got {severity}")
    return np.ascontiguousarray(_FUNCS[kind](np.ascontiguousarray(img), severity, rng), dtype=np.uint8)
