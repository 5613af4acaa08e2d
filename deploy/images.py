"""Camera frame preprocessing for DROID policies: BGR(A) -> RGB, then letterbox to a square."""

from __future__ import annotations

import cv2
import numpy as np


def bgr_to_rgb(frame: np.ndarray) -> np.ndarray:
    """Drop the alpha channel if any and reverse BGR to RGB (ZED and OpenCV give BGR(A))."""
    if frame.ndim != 3 or frame.shape[2] not in (3, 4):
        raise ValueError(f"expected an H x W x 3/4 BGR(A) frame, got shape {frame.shape}")
    return np.ascontiguousarray(frame[..., 2::-1])


def letterbox(image: np.ndarray, size: int = 224) -> np.ndarray:
    """Resize keeping the aspect ratio (bilinear) so the long side is `size`, then zero-pad the short
    side evenly to `size` x `size`. A 1280x720 frame becomes 224x126 centred in black bars."""
    if image.dtype != np.uint8:
        raise ValueError(f"expected uint8 image, got {image.dtype}")
    h, w = image.shape[:2]
    scale = size / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    resized = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    out = np.zeros((size, size, image.shape[2]), np.uint8)
    top, left = (size - nh) // 2, (size - nw) // 2
    out[top : top + nh, left : left + nw] = resized
    return out


def preprocess(frame_bgr: np.ndarray, size: int = 224) -> np.ndarray:
    return letterbox(bgr_to_rgb(frame_bgr), size)
