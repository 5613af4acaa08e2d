"""The sweep driver with an injected runner: a killed sweep re-run finishes only the missing cells; partial cells
are resumed, failed ones recorded and skipped; time and cell limits; one-line exit 2 for bad grids."""

from __future__ import annotations

import pytest

from envs.sweep.driver import run_sweep
from envs.sweep.grid import DataSpec, GridSpec
from envs.sweep.store import ResultsStore

AXES = {
    "optimizer": {"adamw": {"optim": "adamw"}, "pion": {"optim": "pion"}},
    "seed": {"key": "seed", "values": [0, 1]},
}


class Killed(BaseException):
    """Stands in for SIGKILL: nothing after it runs, nothing is written."""


class FakeRunner:
    def __init__(
        self, kill_at: int | None = None, fail: tuple = (), partial_at: int | None = None, clock=None
    ):
        self.calls: list[str] = []
        self.kill_at, self.fail, self.partial_at, self.clock = kill_at, fail, partial_at, clock

    def preflight(self, cell):
        if dict(cell.overrides).get("optim") == "bad":
            raise ValueError(f"cell {cell.label}: 'optim' is not a key")
        return {"steps": 10}

    def run(self, cell, stop):
        self.calls.append(cell.label)
        if self.clock is not None:
            self.clock.t += 100.0
        if len(self.calls) == self.kill_at:
            raise Killed
        if cell.label in self.fail:
            raise RuntimeError("non-finite loss at step 3")
        if len(self.calls) == self.partial_at and stop():
            return {
                "status": "partial",
                "evals": [{"step": 5, "successes": 1, "episodes": 4, "ci95": [0, 1]}],
            }
        return {"status": "done", "evals": [{"step": 10, "successes": 3, "episodes": 4, "ci95": [0, 1]}]}

    def collect(self, cell):
        return {"status": "partial", "evals": []}


def _grid(tmp_path, **kw) -> GridSpec:
    return GridSpec(name="g", experiment="cpu_smoke", axes=AXES, data=DataSpec(root="/d"),
                    store=str(tmp_path / "store.jsonl"), **kw)  # fmt: skip


def _sweep(grid, runner, **kw):
    return run_sweep(grid, runner, "pion-sweep g.yaml", log=lambda s: None, progress=False, **kw)


def test_killed_sweep_rerun_finishes_only_the_missing_cells(tmp_path):
    grid = _grid(tmp_path)
    with pytest.raises(Killed):
        _sweep(grid, FakeRunner(kill_at=3))
    store = ResultsStore(grid.store)
    assert [r["cell"] for r in store.records()] == [
        {"optimizer": "adamw", "seed": "0"},
        {"optimizer": "adamw", "seed": "1"},
    ]
    again = FakeRunner()
    summary = _sweep(grid, again)
    assert again.calls == ["optimizer=pion seed=0", "optimizer=pion seed=1"]
    assert len(summary.skipped) == 2 and len(summary.ran) == 2
    records = store.records()
    assert (
        len(records) == 4
        and len({r["hash"] for r in records}) == 4
        and all(r["status"] == "done" for r in records)
    )
    assert records[2]["command"] == f"pion-sweep g.yaml only=[{records[2]['hash']}]"
    assert records[2]["machine"]["cores"] >= 1 and records[2]["commit"]
    third = FakeRunner()
    assert _sweep(grid, third).ran == [] and third.calls == []


def test_interrupt_records_partial_and_the_rerun_resumes_it(tmp_path):
    grid = _grid(tmp_path)

    class Interrupting(FakeRunner):
        def run(self, cell, stop):
            if not self.calls:
                self.calls.append(cell.label)
                raise KeyboardInterrupt
            return super().run(cell, stop)

    with pytest.raises(KeyboardInterrupt):
        _sweep(grid, Interrupting())
    store = ResultsStore(grid.store)
    assert [r["status"] for r in store.records()] == ["partial"]
    again = FakeRunner()
    _sweep(grid, again)
    assert again.calls[0] == "optimizer=adamw seed=0" and len(again.calls) == 4
    assert {r["status"] for r in store.latest().values()} == {"done"}


def test_failed_cells_are_recorded_and_skipped_unless_retried(tmp_path):
    grid = _grid(tmp_path)
    summary = _sweep(grid, FakeRunner(fail=("optimizer=pion seed=1",)))
    assert list(summary.statuses.values()) == ["done", "done", "done", "failed"]
    failed = [r for r in ResultsStore(grid.store).records() if r["status"] == "failed"]
    assert failed[0]["error"] == "RuntimeError: non-finite loss at step 3"
    assert FakeRunner().calls == [] and _sweep(grid, FakeRunner()).ran == []
    retry = FakeRunner()
    _sweep(_grid(tmp_path, retry_failed=True), retry)
    assert retry.calls == ["optimizer=pion seed=1"]


def test_time_limit_marks_the_cell_partial_and_stops(tmp_path):
    class Clock:
        t = 0.0

        def __call__(self):
            return self.t

    clock = Clock()
    grid = _grid(tmp_path, time_limit_h=150 / 3600)
    summary = _sweep(grid, FakeRunner(partial_at=2, clock=clock), clock=clock)
    assert list(summary.statuses.values()) == ["done", "partial"] and summary.stopped.startswith(
        "time_limit_h"
    )
    recs = ResultsStore(grid.store).records()
    assert recs[1]["wall_s"] == 100.0
    clock.t = 0.0
    _sweep(_grid(tmp_path), FakeRunner(clock=clock), clock=clock)
    latest = ResultsStore(grid.store).latest()
    assert latest[recs[1]["hash"]]["wall_s"] == 200.0  # wall time accumulates over the invocations


def test_max_cells_dry_run_and_preflight_before_anything_runs(tmp_path):
    assert len(_sweep(_grid(tmp_path, max_cells=1), FakeRunner()).ran) == 1
    lines: list[str] = []
    run_sweep(_grid(tmp_path, dry_run=True), FakeRunner(), "c", log=lines.append, progress=False)
    assert [ln.split()[1] for ln in lines] == ["done", "todo", "todo", "todo"]
    bad = _grid(tmp_path)
    bad.axes = {**AXES, "optimizer": {**AXES["optimizer"], "zz": {"optim": "bad"}}}
    runner = FakeRunner()
    with pytest.raises(ValueError, match="optimizer=zz seed=0: 'optim' is not a key"):
        _sweep(bad, runner)
    assert runner.calls == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["nope"], "error: unknown grid 'nope'"),
        (["object_lr", "bogus=1"], "error: grid object_lr.yaml: key 'bogus'"),
        (
            ["object_lr", "axes.lr.key=optim.nolr", "dry_run=true"],
            "'optim.nolr' is not a key of the composed",
        ),
        (["object_lr", "exclude=[{warp: 9}]", "dry_run=true"], "unknown axis 'warp'"),
        (["object_lr", "--fast"], "unknown option '--fast'"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(argv, message, capsys):
    from envs.sweep.cli import main

    with pytest.raises(SystemExit) as e:
        main(argv)
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and len(err.splitlines()) == 1 and message in err


def test_a_perturb_section_reopens_done_cells_for_that_stage_only(tmp_path):
    from envs.sweep.grid import PerturbSpec, expand

    class Clock:
        t = 0.0

        def __call__(self):
            return self.t

    class Perturbing(FakeRunner):
        def __init__(self, spec, **kw):
            super().__init__(**kw)
            self.spec = spec

        def run(self, cell, stop):
            result = super().run(cell, stop)
            cats = {
                c: {"successes": 1, "episodes": 4, "ci95": [0, 1], "severities": {}}
                for c in self.spec.categories
            }
            return {
                **result,
                "train_s": 1.0,
                "perturb": {"spec": self.spec.as_dict(), "step": 10, "categories": cats},
            }

    clock = Clock()
    plain = _grid(tmp_path)
    _sweep(plain, FakeRunner(clock=clock), clock=clock)
    hashes = {r["hash"] for r in ResultsStore(plain.store).records()}
    spec = PerturbSpec(categories=["light", "noise"], severities=[2])
    perturbed = _grid(tmp_path, perturb=spec)
    assert {c.hash for c in expand(perturbed)} == hashes  # perturbation settings are not part of the hash
    lines: list[str] = []
    run_sweep(
        _grid(tmp_path, perturb=spec, dry_run=True), FakeRunner(), "c", log=lines.append, progress=False
    )
    assert all(ln.endswith("(perturbation suite to run)") for ln in lines) and len(lines) == 4
    runner = Perturbing(spec, clock=clock)
    assert len(_sweep(perturbed, runner, clock=clock).ran) == 4  # every done cell re-opened once
    latest = ResultsStore(plain.store).latest()
    assert all(r["perturb"]["spec"]["categories"] == ["light", "noise"] for r in latest.values())
    assert all(r["wall_s"] == 200.0 for r in latest.values())  # cumulative: training run + perturbation run
    again = Perturbing(spec)
    assert _sweep(perturbed, again).ran == [] and again.calls == []  # finished for this spec
    assert _sweep(plain, FakeRunner()).ran == []  # a grid without `perturb` asks nothing more
    other = PerturbSpec(categories=["light", "noise"], severities=[4])
    assert len(_sweep(_grid(tmp_path, perturb=other), Perturbing(other)).ran) == 4  # another spec: run again


def test_a_reopened_cell_trained_again_from_scratch_does_not_add_up_times(tmp_path):
    """On a machine without the run directory, re-opening a done cell trains it again: its record then carries
    the new run's wall and training time only (the earlier run's are in the earlier record)."""
    from envs.sweep.grid import PerturbSpec

    class Clock:
        t = 0.0

        def __call__(self):
            return self.t

    class Retraining(FakeRunner):
        def run(self, cell, stop):
            result = super().run(cell, stop)
            spec = PerturbSpec(categories=["light"]).as_dict()
            cats = {"light": {"successes": 0, "episodes": 4, "ci95": [0, 1], "severities": {}}}
            return {**result, "train_s": 80.0, "trained_from_scratch": True,
                    "perturb": {"spec": spec, "step": 10, "categories": cats}}  # fmt: skip

    clock = Clock()
    plain = _grid(tmp_path)
    _sweep(plain, FakeRunner(clock=clock), clock=clock)
    _sweep(_grid(tmp_path, perturb=PerturbSpec(categories=["light"])), Retraining(clock=clock), clock=clock)
    latest = ResultsStore(plain.store).latest().values()
    assert all(r["wall_s"] == 100.0 and r["train_s"] == 80.0 for r in latest)


def test_per_task_counts_key_by_task_id_and_by_suite_when_several():
    from envs.sweep.runner import per_task_counts

    row = {"suite": "libero_object", "task_id": 3, "successes": 2, "episodes": 10, "success_rate": 0.2}
    assert per_task_counts({"tasks": [row, {**row, "task_id": 4, "successes": 0}]}) == {
        "3": [2, 10],
        "4": [0, 10],
    }
    two = per_task_counts({"tasks": [row, {**row, "suite": "libero_goal"}]})
    assert two == {"libero_object/3": [2, 10], "libero_goal/3": [2, 10]}
