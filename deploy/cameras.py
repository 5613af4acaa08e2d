"""Cameras behind one small interface: `read()` returns the latest BGR(A) uint8 frame (H, W, 3|4).

- `SimCamera`: a synthetic moving pattern (tests, dry runs) - deterministic per frame index.
- `OpenCVCamera`: any V4L / UVC device or video file through OpenCV.
- `ZedCamera`: a Stereolabs ZED (left image, BGRA) when the `pyzed` SDK is installed.
"""

from __future__ import annotations

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
    def __init__(self, name: str, device: int | str = 0, width: int | None = None, height: int | None = None):
        import cv2

        self.name = name
        self._cap = cv2.VideoCapture(device)
        if not self._cap.isOpened():
            raise CameraError(
                f"camera {name!r}: cannot open OpenCV device {device!r} (check /dev/video*, permissions)"
            )
        if width:
            self._cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
        if height:
            self._cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)

    def read(self) -> np.ndarray:
        ok, frame = self._cap.read()
        if not ok or frame is None:
            raise CameraError(f"camera {self.name!r}: no frame (device unplugged or end of file?)")
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
