"""Hydra glue shared by every CLI: where the configs live and how a CLI entry point is declared."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = Path(os.environ.get("PION_CONFIG_DIR", REPO_ROOT / "configs"))


def hydra_cli(config_name: str) -> Callable[[Callable], Callable[[], None]]:
    """Turn `fn(cfg)` into a `[project.scripts]` entry point configured from `configs/<config_name>.yaml`.

    Hydra's working-directory change is off (`hydra.job.chdir=False`) so relative paths on the
    command line mean what the user typed.
    """
    import hydra  # local import: `--help` of other tools should not pay for it

    def wrap(fn: Callable) -> Callable[[], None]:
        if not CONFIG_DIR.is_dir():
            raise FileNotFoundError(f"config dir {CONFIG_DIR} not found; set PION_CONFIG_DIR")
        decorated = hydra.main(config_path=str(CONFIG_DIR), config_name=config_name, version_base="1.3")(fn)

        def main() -> None:
            if not any(a.startswith("hydra.job.chdir") for a in sys.argv[1:]):
                sys.argv.append("hydra.job.chdir=False")
            decorated()

        main.__doc__ = fn.__doc__
        return main

    return wrap
