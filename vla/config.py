"""Hydra glue shared by every CLI: where the configs live and how a CLI entry point is declared."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = Path(os.environ.get("PION_CONFIG_DIR", REPO_ROOT / "configs"))


# Exceptions that mean "bad input" (unknown suite, missing assets, bad config value): a CLI prints the
# message and exits with status 2 instead of a traceback. Set PION_DEBUG=1 to get the traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, FileNotFoundError, NotImplementedError)


def hydra_cli(config_name: str) -> Callable[[Callable], Callable[[], None]]:
    """Turn `fn(cfg)` into a `[project.scripts]` entry point configured from `configs/<config_name>.yaml`.

    With version_base 1.3 Hydra does not change the working directory, so relative paths on the
    command line mean what the user typed.
    """
    import functools

    import hydra  # local import: `--help` of other tools should not pay for it

    def wrap(fn: Callable) -> Callable[[], None]:
        if not CONFIG_DIR.is_dir():
            raise FileNotFoundError(f"config dir {CONFIG_DIR} not found; set PION_CONFIG_DIR")

        @functools.wraps(fn)
        def guarded(cfg):
            try:
                return fn(cfg)
            except USER_ERRORS as e:
                if os.environ.get("PION_DEBUG"):
                    raise
                print(f"error: {e}", file=sys.stderr)
                raise SystemExit(2) from e

        decorated = hydra.main(config_path=str(CONFIG_DIR), config_name=config_name, version_base="1.3")(guarded)

        def main() -> None:
            decorated()

        main.__doc__ = fn.__doc__
        return main

    return wrap
