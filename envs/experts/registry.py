"""Which scripted expert solves which LIBERO suite."""

from __future__ import annotations

from envs.experts.pick_place import PickPlaceExpert
from envs.experts.scene import UnsupportedTaskError

# Suites whose every task is a single pick-and-place goal the top-down expert handles.
SUPPORTED_SUITES = ("libero_object", "libero_spatial")


def make_expert(env, *, allow_unsupported: bool = False) -> PickPlaceExpert:
    """The scripted expert bound to `env` (a `LiberoEnv`). Raises for suites it was not built for."""
    suite = env.task.suite
    if suite not in SUPPORTED_SUITES and not allow_unsupported:
        raise UnsupportedTaskError(
            f"no scripted expert for {suite}; supported suites: {', '.join(SUPPORTED_SUITES)} "
            "(pass allow_unsupported=True to try the pick-and-place expert anyway)"
        )
    return PickPlaceExpert(env)
