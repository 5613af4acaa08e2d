"""Suite and task lookup with errors that list the valid choices."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache

import numpy as np

from envs.libero.constants import SUITES
from envs.libero_bootstrap import bootstrap


class UnknownTaskError(ValueError):
    """An unknown suite, task id or init-state index; the message lists the valid ones."""


@dataclass(frozen=True)
class TaskInfo:
    suite: str
    task_id: int
    name: str
    language: str
    bddl_file: str
    init_states_file: str


def check_suite(suite: str) -> str:
    if suite not in SUITES:
        raise UnknownTaskError(f"unknown LIBERO suite {suite!r}; valid suites: {', '.join(SUITES)}")
    return suite


@cache
def _suite_object(suite: str):
    bootstrap()
    from libero.libero import benchmark

    return benchmark.get_benchmark_dict()[suite]()


def num_tasks(suite: str) -> int:
    return _suite_object(check_suite(suite)).n_tasks


def get_task(suite: str, task_id: int) -> TaskInfo:
    suite_obj = _suite_object(check_suite(suite))
    n = suite_obj.n_tasks
    if not isinstance(task_id, int | np.integer) or not 0 <= int(task_id) < n:
        names = "\n".join(f"  {i}: {suite_obj.get_task(i).name}" for i in range(n))
        raise UnknownTaskError(f"task id {task_id!r} not in {suite} (valid ids 0..{n - 1}):\n{names}")
    from libero.libero import get_libero_path

    task = suite_obj.get_task(int(task_id))
    return TaskInfo(
        suite=suite,
        task_id=int(task_id),
        name=task.name,
        language=task.language,
        bddl_file=os.path.join(get_libero_path("bddl_files"), task.problem_folder, task.bddl_file),
        init_states_file=os.path.join(
            get_libero_path("init_states"), task.problem_folder, task.init_states_file
        ),
    )


def load_init_states(task: TaskInfo) -> np.ndarray:
    """The task's fixed init states, shape (50, D); index i is trial i of the standard protocol."""
    import torch

    if not os.path.isfile(task.init_states_file):
        raise FileNotFoundError(f"init states for {task.suite}/{task.name} missing: {task.init_states_file}")
    states = torch.load(task.init_states_file, weights_only=False)  # a numpy array pickled by LIBERO
    return np.asarray(states)
