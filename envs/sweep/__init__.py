"""Sweeps: a grid of pion-train experiments, each cell trained, evaluated and recorded in a committed store.

    pion-sweep object_optimizers          # configs/sweep/object_optimizers.yaml; resumable, skips finished cells
    pion-results                          # docs/results.md (+ PNGs) regenerated from docs/results/store.jsonl

| module | one concept |
|---|---|
| `grid.py` | grid file -> `GridSpec` -> cells (axes x levels, excludes, key conflicts refused) |
| `hashing.py` | the cell hash (canonical JSON of the cell spec), the key of the store |
| `store.py` | the append-only JSONL results store and the provenance of a record (commit, machine, date) |
| `runner.py` | one cell: resumable training -> evaluation of several checkpoints on held-out init states -> diagnostics |
| `driver.py` | the loop over cells: preflight, skip finished, progress + ETA, partial / failed records |
| `significance.py` | two-proportion z-tests (Fisher's exact test for small counts) with Holm's correction |
| `plots.py`, `report.py` | the PNGs and docs/results.md |
| `cli.py` | `pion-sweep`, `pion-results` |
"""

from envs.sweep.driver import SweepSummary, run_sweep
from envs.sweep.grid import Cell, GridSpec, expand, load_grid
from envs.sweep.hashing import cell_hash
from envs.sweep.store import ResultsStore

__all__ = [
    "Cell",
    "GridSpec",
    "ResultsStore",
    "SweepSummary",
    "cell_hash",
    "expand",
    "load_grid",
    "run_sweep",
]
