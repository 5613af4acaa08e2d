"""Cameras behind one small interface: `read()` returns the latest BGR(A) uint8 frame (H, W, 3|4).

- `SimCamera`: a synthetic moving pattern (tests, dry runs) - deterministic per frame index.
- `OpenCVCamera`: any V4L / UVC device or video file through OpenCV.
- `ZedCamera`: a Stereolabs ZED (left image, BGRA) when the `pyzed` SDK is installed.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Protocol

import numpy as np


class CameraError(RuntimeError):
    """A camera could not be opened or returned no frame."""


class Camera(Protocol):
    name: str

    def read(self) -> np.ndarray: ...

    def close(self) -> None: ...


class SimCamera:
    def __init__(self, name: str, height: int = 720, width: int = 1280, channels: int = 4):
        self.name = name
        self.shape = (height, width, channels)
        self.frames = 0
        yy, xx = np.mgrid[0:height, 0:width]
        self._base = ((xx + yy) % 256).astype(np.uint8)

    def read(self) -> np.ndarray:
        k = self.frames
        self.frames += 1
        img = np.empty(self.shape, np.uint8)
        img[..., 0] = self._base + np.uint8(k % 256)  # B
        img[..., 1] = np.uint8((37 * k) % 256)  # G
        img[..., 2] = self._base[::-1]  # R
        if self.shape[2] == 4:
            img[..., 3] = 255
        return img

    def close(self) -> None:
        pass


class OpenCVCamera:
    """A V4L / UVC device (int index or /dev/video path) or a video file through OpenCV.

    `timestamp_s` is the capture time of the last frame: the position in the file for a video file,
    the monotonic clock at the end of `read()` for a device. A file is read as fast as asked unless
    `realtime=True`, which paces it at its own frame rate like a live camera (replaying a recording in a
    dry run). At the end of a file `read()` raises CameraError saying so.
    """

    def __init__(
        self,
        name: str,
        device: int | str = 0,
        width: int | None = None,
        height: int | None = None,
        realtime: bool = False,
    ):
        import cv2

        self._cv2 = cv2
        self.name = name
        self.device = device
        self._cap = cv2.VideoCapture(device)
        if not self._cap.isOpened():
            raise CameraError(
                f"camera {name!r}: cannot open OpenCV device {device!r} (check /dev/video*, permissions)"
            )
        self.is_file = isinstance(device, str) and Path(device).is_file()
        if width:
            self._cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
        if height:
            self._cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        self.fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.realtime = realtime and self.is_file and self.fps > 0
        self.frames = 0
        self.timestamp_s: float | None = None
        self._t_start: float | None = None

    def read(self) -> np.ndarray:
        if self.realtime:
            if self._t_start is None:
                self._t_start = time.monotonic()
            due = self._t_start + self.frames / self.fps
            time.sleep(max(0.0, due - time.monotonic()))
        ok, frame = self._cap.read()
        if not ok or frame is None:
            if self.is_file:
                raise CameraError(
                    f"camera {self.name!r}: end of video file {self.device} after {self.frames} frames"
                )
            raise CameraError(f"camera {self.name!r}: no frame (device unplugged?)")
        self.frames += 1
        if self.is_file:
            self.timestamp_s = float(self._cap.get(self._cv2.CAP_PROP_POS_MSEC)) / 1000.0
        else:
            self.timestamp_s = time.monotonic()
        return frame

    def close(self) -> None:
        self._cap.release()


class ZedCamera:
    """Left image of a ZED 2 / ZED Mini by serial number, HD720 at 60 fps like DROID."""

    def __init__(self, name: str, serial: int, fps: int = 60):
        try:
            import pyzed.sl as sl
        except ImportError as e:
            raise CameraError(
                "ZED camera needs the Stereolabs SDK Python package `pyzed`; "
                "install the ZED SDK, or use an OpenCV camera"
            ) from e
        self.name = name
        self._sl = sl
        self._cam = sl.Camera()
        init = sl.InitParameters()
        init.camera_resolution = sl.RESOLUTION.HD720
        init.camera_fps = fps
        init.set_from_serial_number(int(serial))
        err = self._cam.open(init)
        if err != sl.ERROR_CODE.SUCCESS:
            raise CameraError(f"camera {name!r}: cannot open ZED {serial}: {err}")
        self._mat = sl.Mat()

    def read(self) -> np.ndarray:
        sl = self._sl
        if self._cam.grab() != sl.ERROR_CODE.SUCCESS:
            raise CameraError(f"camera {self.name!r}: ZED grab failed")
        self._cam.retrieve_image(self._mat, sl.VIEW.LEFT)
        return np.array(self._mat.get_data(), copy=True)  # BGRA

    def close(self) -> None:
        self._cam.close()


def make_camera(name: str, kind: str, **kw) -> Camera:
    if kind == "sim":
        return SimCamera(name, **kw)
    if kind == "opencv":
        return OpenCVCamera(name, **kw)
    if kind == "zed":
        return ZedCamera(name, **kw)
    raise ValueError(f"unknown camera kind {kind!r}; use sim, opencv or zed")
