"""pion-sweep / pion-results: run a grid of train -> eval cells into the results store; regenerate docs/results.md.

    pion-sweep object_optimizers                        # configs/sweep/object_optimizers.yaml, resumable
    pion-sweep object_optimizers dry_run=true           # list cells, hashes and stored status
    pion-sweep object_optimizers only=[3fa2c1] max_cells=1 time_limit_h=4 eval.trials_per_task=5
    pion-sweep path/to/grid.yaml
    pion-results                                        # docs/results.md + docs/img/results/*.png from the store

Arguments after the grid are `key=value` overrides of the grid file (GridSpec keys, dotted). A bad grid file, an
unknown key or axis, or an override that does not fit the pion-train config prints one line and exits 2.
"""

from __future__ import annotations

import os
import shlex
import sys
from dataclasses import dataclass

CONTROL_KEYS = ("only", "max_cells", "time_limit_h", "retry_failed", "dry_run")


def _fail(e: BaseException) -> None:
    if os.environ.get("PION_DEBUG"):
        raise e
    print(f"error: {str(e).splitlines()[0] if str(e) else type(e).__name__}", file=sys.stderr)
    raise SystemExit(2) from None


def sweep_command(grid_arg: str, overrides: list[str]) -> str:
    """The command that reproduces the cells: grid + result-affecting overrides (run controls dropped)."""
    kept = [o for o in overrides if o.split("=", 1)[0].lstrip("+") not in CONTROL_KEYS]
    return shlex.join(["pion-sweep", grid_arg, *kept])


def main(argv: list[str] | None = None) -> None:
    """pion-sweep <grid> [key=value ...]"""
    from envs.sweep.driver import run_sweep
    from envs.sweep.grid import load_grid
    from envs.sweep.runner import CellRunner
    from vla.config import USER_ERRORS

    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(__doc__)
        return
    grid_arg, overrides = args[0], args[1:]
    try:
        flags = [a for a in args if a.startswith("-")]
        if flags:
            raise ValueError(f"unknown option {flags[0]!r}; arguments are <grid> key=value ...")
        grid = load_grid(grid_arg, overrides)
        summary = run_sweep(grid, CellRunner(grid), sweep_command(grid_arg, overrides))
    except KeyboardInterrupt:
        print("[sweep] interrupted; re-run the same command to continue", file=sys.stderr)
        raise SystemExit(130) from None
    except USER_ERRORS as e:
        _fail(e)
    if not grid.dry_run:
        stopped = f"; stopped early ({summary.stopped})" if summary.stopped else ""
        print(f"[sweep] {len(summary.ran)} cell(s) run, {len(summary.skipped)} skipped{stopped}; "
              f"store {grid.store}; regenerate the doc with: pion-results")  # fmt: skip


@dataclass
class ResultsConfig:
    store: str = "docs/results/store.jsonl"  # the results store written by pion-sweep
    out: str = "docs/results.md"  # the generated doc
    img_dir: str = "docs/img/results"  # its PNGs (paths in the doc are relative to the doc)
    # the paper-comparison section that opens the doc ('' = none)
    headline: str = "configs/results/headline.yaml"


def results_main(argv: list[str] | None = None) -> None:
    """pion-results [store=...] [out=...] [img_dir=...] [headline=...]"""
    from envs.sweep.report import write_report
    from vla.config import USER_ERRORS, load_config

    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in ("-h", "--help"):
        print(__doc__)
        return
    try:
        bad = [a for a in args if "=" not in a]
        if bad:
            raise ValueError(f"bad argument {bad[0]!r}: pion-results takes store=, out=, img_dir=, headline=")
        cfg = load_config(ResultsConfig, dict(a.split("=", 1) for a in args), "pion-results")
        path = write_report(cfg.store, cfg.out, cfg.img_dir, cfg.headline or None)
    except USER_ERRORS as e:
        _fail(e)
    print(f"[pion-results] wrote {path}")


if __name__ == "__main__":
    main()
