"""LIBERO environments under the standard evaluation protocol (see envs.libero.constants)."""

from envs.libero.constants import CAMERA_KEYS, MAX_STEPS, SUITES
from envs.libero.tasks import TaskInfo, UnknownTaskError, get_task, num_tasks

__all__ = [
    "CAMERA_KEYS",
    "MAX_STEPS",
    "SUITES",
    "TaskInfo",
    "UnknownTaskError",
    "get_task",
    "num_tasks",
    "make_env",
]


def make_env(suite: str, task_id: int, **kwargs):
    """Build a `LiberoEnv` (imported lazily: the simulator stack is heavy)."""
    from envs.libero.env import LiberoEnv

    return LiberoEnv(suite, task_id, **kwargs)
