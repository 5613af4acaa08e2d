"""Policies for the eval tests, loaded as "eval_test_policies:<factory>" (some built inside worker processes)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from vla.conventions import DROID_JOINT_VELOCITY, OPEN1_CLOSE0
from vla.policies import HoldStillPolicy


def _claim(marker: Path) -> bool:
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        return True
    except FileExistsError:
        return False


class _Misbehaving(HoldStillPolicy):
    """First query ever (across all workers): SIGKILL itself. Second worker's first query: hang. Then behave."""

    def __init__(self, marker_dir: str) -> None:
        super().__init__()
        self.dir = Path(marker_dir)
        self.first = True

    def predict_chunk(self, batch):
        if self.first:
            self.first = False
            if _claim(self.dir / "crashed"):
                os.kill(os.getpid(), signal.SIGKILL)
            if _claim(self.dir / "hung"):
                time.sleep(3600)
        return super().predict_chunk(batch)


def misbehaving(env=None, marker_dir: str = "/tmp") -> _Misbehaving:
    return _Misbehaving(marker_dir)


def hold(chunk_len: int = 4) -> HoldStillPolicy:
    """A module:factory spec for the policy-resolution tests."""
    return HoldStillPolicy(chunk_len=chunk_len)


def droid_hold() -> HoldStillPolicy:
    """A DROID policy: a LIBERO env must refuse it before the first step."""
    return HoldStillPolicy(DROID_JOINT_VELOCITY)


class OpenCloseHold(HoldStillPolicy):
    """A LIBERO policy trained with the open1_close0 gripper convention: emits 1.0 (= open)."""

    def __init__(self) -> None:
        super().__init__(chunk_len=2, gripper=1.0)
        import dataclasses

        self.spec = dataclasses.replace(self.spec, policy_id="open1", gripper_convention=OPEN1_CLOSE0)
