"""The sweep driver: expand the grid, skip the cells the store already finished, run the rest one by one.

    summary = run_sweep(grid, runner, command="pion-sweep object_optimizers")

Every cell is checked first (its pion-train config composed and validated), so a bad key stops the sweep before
hours of work. Then, cell by cell: `runner.run(cell, stop)` -> one record appended to the results store. A cell
whose last record is `done` (or `failed`, unless `retry_failed`) is skipped; a `partial` one or one without a
record is run again, and the runner resumes it from its last checkpoint and its finished evaluations.
Records carry the cell's cumulative wall time over all the invocations that worked on it. A grid with a
`perturb` section also re-opens `done` cells whose record lacks that perturbation spec's results: the runner
reuses their run directory, so only the perturbed evaluation runs (GridSpec.perturb, envs.sweep.grid.PerturbSpec).

Stopping: `max_cells` (cells run by this invocation), `time_limit_h` (checked between stages; the cell in
progress is recorded as `partial`), Ctrl-C (the cell in progress is recorded as `partial`, exit status 130).
A SIGKILL leaves no record for the cell in progress: the next run resumes it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from envs.sweep.grid import Cell, GridSpec, expand, select
from envs.sweep.store import ResultsStore, provenance


class Runner(Protocol):
    def preflight(self, cell: Cell) -> dict: ...  # {"steps": int, ...}; raises ValueError on a bad config

    def run(self, cell: Cell, stop: Callable[[], bool]) -> dict: ...  # result with "status"

    def collect(self, cell: Cell) -> dict: ...  # what is on disk now, status "partial"


@dataclass
class SweepSummary:
    cells: int = 0  # cells of the (selected) grid
    skipped: list[str] = field(default_factory=list)  # hashes already finished in the store
    ran: list[str] = field(default_factory=list)  # hashes run by this invocation (any status)
    statuses: dict[str, str] = field(default_factory=dict)  # hash -> status recorded now
    stopped: str | None = None  # why the sweep stopped early (max_cells, time limit)


def cell_command(command: str, cell: Cell) -> str:
    """The exact command that (re)runs one cell."""
    return f"{command} only=[{cell.hash}]"


def needs_perturbation(grid: GridSpec, record: dict) -> bool:
    """A finished record that lacks the results of the grid's perturbation spec."""
    if grid.perturb is None or record.get("status") != "done":
        return False
    return (record.get("perturb") or {}).get("spec") != grid.perturb.as_dict()


def _record(
    grid: GridSpec, cell: Cell, result: dict, command: str, wall_s: float, before: dict | None
) -> dict:
    # wall and training time accumulate over the invocations that continued one run: a partial cell resumed, or a
    # done cell re-opened for its perturbation stage on the machine that holds its run directory
    status = before.get("status") if before else None
    carried = status == "partial" or (status == "done" and not result.get("trained_from_scratch"))
    prior = float(before.get("wall_s", 0.0)) if carried else 0.0
    if carried and result.get("train_s") is not None and before.get("train_s") is not None:
        result = {**result, "train_s": round(float(before["train_s"]) + float(result["train_s"]), 1)}
    return {
        "hash": cell.hash,
        "grid": grid.name,
        "description": grid.description,
        "cell": dict(cell.levels),
        "spec": cell.spec,
        "command": cell_command(command, cell),
        **provenance(),
        "wall_s": round(prior + wall_s, 1),
        "wall_s_this_run": round(wall_s, 1),
        **result,
    }


def _fmt_eta(seconds: float) -> str:
    m = int(seconds // 60)
    return f"{m // 60}h{m % 60:02d}m" if m >= 60 else f"{m}m{int(seconds % 60):02d}s"


def describe(
    cells: list[Cell], store: ResultsStore, plans: dict[str, dict], grid: GridSpec | None = None
) -> list[str]:
    """One line per cell: hash, levels, steps, stored status (the dry-run listing)."""
    latest = store.latest()
    lines = []
    for c in cells:
        status = latest[c.hash]["status"] if c.hash in latest else "todo"
        todo = grid is not None and c.hash in latest and needs_perturbation(grid, latest[c.hash])
        note = "  (perturbation suite to run)" if todo else ""
        lines.append(f"{c.hash}  {status:8s} {plans[c.hash]['steps']:>6} steps  {c.label}{note}")
    return lines


def run_sweep(
    grid: GridSpec,
    runner: Runner,
    command: str,
    *,
    clock: Callable[[], float] = time.monotonic,
    log: Callable[[str], Any] = print,
    progress: bool = True,
) -> SweepSummary:
    cells = select(expand(grid), grid.only)
    store = ResultsStore(grid.store)
    plans = {c.hash: runner.preflight(c) for c in cells}  # every config checked before anything runs
    summary = SweepSummary(cells=len(cells))
    if grid.dry_run:
        for line in describe(cells, store, plans, grid):
            log(line)
        return summary
    latest = store.latest()
    finished = {h for h in store.finished(grid.retry_failed) if not needs_perturbation(grid, latest[h])}
    summary.skipped = [c.hash for c in cells if c.hash in finished]
    todo = [c for c in cells if c.hash not in finished]
    log(
        f"[sweep] {grid.name}: {len(cells)} cells, {len(summary.skipped)} finished in {grid.store}, {len(todo)} to run"
    )
    start = clock()
    deadline = start + grid.time_limit_h * 3600 if grid.time_limit_h else None

    def time_up() -> bool:
        return deadline is not None and clock() >= deadline

    total = sum(plans[c.hash]["steps"] for c in todo)
    from tqdm import tqdm

    bar = tqdm(total=total, unit="step", desc=f"sweep {grid.name}", disable=not progress, position=0)
    done_units = 0
    try:
        for i, cell in enumerate(todo):
            if grid.max_cells is not None and len(summary.ran) >= grid.max_cells:
                summary.stopped = f"max_cells={grid.max_cells}"
                break
            if time_up():
                summary.stopped = f"time_limit_h={grid.time_limit_h}"
                break
            elapsed = clock() - start
            eta = elapsed / done_units * (total - done_units) if done_units else None
            log(f"[sweep] cell {i + 1}/{len(todo)} {cell.hash} ({cell.label})"
                + (f"; sweep ETA {_fmt_eta(eta)}" if eta is not None else ""))  # fmt: skip
            before = store.latest().get(cell.hash)
            t0 = clock()
            try:
                result = runner.run(cell, time_up)
            except KeyboardInterrupt:
                store.append(_record(grid, cell, runner.collect(cell), command, clock() - t0, before))
                summary.ran.append(cell.hash)
                summary.statuses[cell.hash] = "partial"
                log(f"[sweep] interrupted: {cell.hash} recorded as partial")
                raise
            except Exception as e:  # noqa: BLE001 - a failed cell is a result; the sweep goes on
                result = {
                    "status": "failed",
                    "error": f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}",
                }
            store.append(_record(grid, cell, result, command, clock() - t0, before))
            summary.ran.append(cell.hash)
            summary.statuses[cell.hash] = result["status"]
            done_units += plans[cell.hash]["steps"]
            bar.update(plans[cell.hash]["steps"])
            last = (result.get("evals") or [{}])[-1]
            score = f", success {last['successes']}/{last['episodes']}" if "successes" in last else ""
            log(f"[sweep] {cell.hash}: {result['status']} in {_fmt_eta(clock() - t0)}{score}"
                + (f" ({result['error']})" if "error" in result else ""))  # fmt: skip
            if result["status"] == "partial":
                summary.stopped = f"time_limit_h={grid.time_limit_h}"
                break
    finally:
        bar.close()
    return summary
