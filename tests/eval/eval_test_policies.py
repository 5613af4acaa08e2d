"""Policies that misbehave on purpose, for the crash/hang tests (built inside worker processes)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from envs.policies import HoldStillPolicy


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
