"""Shared test setup: every test process is offline and LIBERO-ready before any test imports it."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MUJOCO_GL", "egl")
