"""The one choice of video decoding backend, made up front and quietly.

lerobot picks a decoder per dataset object: it imports torchcodec, and where torchcodec cannot load its
FFmpeg shared libraries (no system FFmpeg), it logs the whole multi-page loader error as a warning and falls
back to pyav, on every `LeRobotDataset(...)` / `LeRobotDataset.create(...)`. Passing
`video_backend=video_backend()` everywhere (training, `pion-gen-demos`, `pion-robot` recording) avoids that:
torchcodec is probed once per process, silently, and pyav is used when it does not load.

`PION_VIDEO_BACKEND=torchcodec|pyav` forces a backend (forcing torchcodec on a machine where it cannot load
raises an error naming the cause).
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.util
import io
import logging
import os

log = logging.getLogger(__name__)

BACKENDS = ("torchcodec", "pyav")
ENV_VAR = "PION_VIDEO_BACKEND"


class VideoBackendError(ValueError):
    """A requested video backend is unknown or cannot be loaded on this machine."""


@functools.cache
def _torchcodec_loads() -> tuple[bool, str]:
    """Whether `import torchcodec` succeeds here; probed once, with stdout/stderr swallowed."""
    if importlib.util.find_spec("torchcodec") is None:
        return False, "torchcodec is not installed"
    sink = io.StringIO()
    try:
        with contextlib.redirect_stderr(sink), contextlib.redirect_stdout(sink):
            importlib.import_module("torchcodec")
    except (ImportError, OSError, RuntimeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        return False, first
    return True, ""


def video_backend(prefer: str | None = None) -> str:
    """The decoder to pass as `video_backend=` to lerobot: torchcodec if it loads here, else pyav.

    `prefer` (or the environment variable PION_VIDEO_BACKEND) forces one of `BACKENDS`.
    """
    choice = prefer or os.environ.get(ENV_VAR) or None
    if choice is not None:
        if choice not in BACKENDS:
            raise VideoBackendError(
                f"unknown video backend {choice!r} (from {ENV_VAR} or argument); valid: {BACKENDS}"
            )
        if choice == "torchcodec":
            ok, why = _torchcodec_loads()
            if not ok:
                raise VideoBackendError(
                    f"video backend 'torchcodec' cannot be used here: {why}; install FFmpeg shared libraries "
                    f"(e.g. apt-get install ffmpeg) or use {ENV_VAR}=pyav"
                )
        return choice
    ok, why = _torchcodec_loads()
    if ok:
        return "torchcodec"
    log.debug("video backend: pyav (torchcodec unavailable: %s)", why)
    return "pyav"
