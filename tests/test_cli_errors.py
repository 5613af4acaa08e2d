"""CLIs turn bad input into one clear line and exit status 2, not a traceback."""

import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent


def test_unknown_suite_lists_valid_ones():
    proc = subprocess.run(
        [str(BIN / "pion-rollout"), "suite=libero_objects"], capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL
    )
    assert proc.returncode == 2
    assert "unknown LIBERO suite 'libero_objects'" in proc.stderr
    assert "libero_spatial, libero_object, libero_goal, libero_10, libero_90" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_unknown_policy_is_reported():
    proc = subprocess.run(
        [str(BIN / "pion-rollout"), "policy=nope", "video=false"], capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL
    )
    assert proc.returncode == 2 and "unknown policy 'nope'; valid: hold, expert" in proc.stderr
