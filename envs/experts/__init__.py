"""Scripted LIBERO experts that read privileged simulator state and act through 7-D OSC delta actions."""

from envs.experts.registry import SUPPORTED_SUITES, make_expert
from envs.experts.scene import UnsupportedTaskError

__all__ = ["SUPPORTED_SUITES", "UnsupportedTaskError", "make_expert"]
