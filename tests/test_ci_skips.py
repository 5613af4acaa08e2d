"""A test that would skip because a pinned dependency is missing fails in CI (CI=true), and skips elsewhere."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

CONFTEST = Path(__file__).with_name("conftest.py")
TESTS = """
import pytest
pytest.importorskip("no_such_pinned_dependency_xyz")

def test_needs_it():
    pass
"""
INNER = """
import pytest

def test_inner_skip():
    pytest.importorskip("no_such_pinned_dependency_xyz")

def test_plain_skip():
    pytest.skip("not an import: stays a skip")
"""


def _pytest(path: Path, ci: str) -> tuple[int, str]:
    env = os.environ | {"CI": ci}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(path)],
        cwd=path.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return proc.returncode, proc.stdout


def test_import_skips_fail_only_in_ci(tmp_path):
    shutil.copy(CONFTEST, tmp_path / "conftest.py")
    (tmp_path / "test_module_level.py").write_text(TESTS)
    (tmp_path / "test_inner.py").write_text(INNER)
    code, out = _pytest(tmp_path, "")
    assert code == 0 and "3 skipped" in out, out  # outside CI: skips stay skips
    code, out = _pytest(tmp_path / "test_module_level.py", "true")
    assert code != 0 and "refusing to skip" in out and "no_such_pinned_dependency_xyz" in out, out
    code, out = _pytest(tmp_path / "test_inner.py", "true")
    assert code == 1 and "1 failed, 1 skipped" in out, out  # an explicit pytest.skip is not an import skip
