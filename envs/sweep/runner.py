"""One cell of a sweep: train (resumable) -> evaluate several checkpoints on held-out init states -> diagnostics.

    runner = CellRunner(grid)             # generates / reuses the demonstrations once per grid
    plan = runner.preflight(cell)         # composes and validates the cell's pion-train config
    result = runner.run(cell, stop)       # train -> eval at every checkpoint -> diagnostics
    result = runner.collect(cell)         # what the run directory holds now (after an interrupt)

The run directory is `<grid.out_dir>/<grid.name>/<cell hash>/`: the trainer runs there with `run_name=<hash>`
and `resume=true`, so a killed cell continues from its last complete checkpoint, and every checkpoint's
evaluation goes to `sweep_evals/step_N/`, where the harness resumes episode by episode. The trainer's own
eval hook stays off (`eval.every=0`): the sweep evaluates after training, per task on the init states that no
demonstration started from. Diagnostics are whatever the trainer logged: `spectral.jsonl` (effective rank of
gradients and updates per routing bucket) and the `zero_update_frac/*` columns of `metrics.jsonl`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from envs.sweep.grid import Cell, GridSpec
from envs.sweep.hashing import composed_digest, digest

MAX_POINTS = 60  # points kept per logged curve in the store (evenly thinned, last one always kept)
EVAL_DIR = "sweep_evals"


def perturbed_dir_prefix(spec) -> str:
    """sweep_evals/perturbed_<spec digest>_step_N/: one directory per perturbation spec and checkpoint."""
    return f"perturbed_{digest(spec.as_dict())[:8]}_step_"


def eval_steps(steps: int, every: int) -> list[int]:
    """Checkpoints evaluated: every `every` updates and the last one."""
    points = list(range(every, steps + 1, every)) if every > 0 else []
    return points if points and points[-1] == steps else [*points, steps]


def _thin(rows: list, n: int = MAX_POINTS) -> list:
    if len(rows) <= n:
        return rows
    idx = sorted({round(i * (len(rows) - 1) / (n - 1)) for i in range(n)})
    return [rows[i] for i in idx]


def per_task_counts(summary: dict) -> dict[str, list[int]]:
    """{task: [successes, episodes]} of an evaluation summary's per-task rows; the task is its id, prefixed by
    its suite when the summary spans several suites."""
    rows = summary["tasks"]
    several = len({t["suite"] for t in rows}) > 1
    return {
        (f"{t['suite']}/{t['task_id']}" if several else str(t["task_id"])): [
            int(t["successes"]),
            int(t["episodes"]),
        ]
        for t in rows
    }


def _jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line cut by a kill
    return out


def _override_groups(overrides: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    """Split overrides into hydra group selections (`optim: muon`) and dotted values."""
    from vla.config import CONFIG_DIR

    groups, values = [], {}
    for key, value in overrides.items():
        if isinstance(value, str) and "." not in key and (CONFIG_DIR / key).is_dir():
            groups.append(f"{key}={value}")
        else:
            values[key] = value
    return groups, values


def _clean_on_subset(eval_dir: Path, init: dict[int, list[int]], per_task: int | None) -> dict | None:
    """The clean success of the same checkpoint on exactly the init states the perturbation suite replays (the
    first `per_task` held-out states of each task), counted from the clean evaluation's episodes as its summary
    counts them (envs.eval.results: one record per episode key, an errored episode is a failure): the paired
    baseline for the perturbed columns. None when that evaluation does not hold every one of those states."""
    from envs.eval.results import read_records

    wanted = {
        (int(t), int(s)) for t, states in init.items() for s in (states[:per_task] if per_task else states)
    }
    path = eval_dir / "episodes.jsonl"
    if not wanted or not path.is_file():
        return None
    picked = [
        r
        for r in read_records([path])
        if (int(r["task_id"]), int(r["init_state"])) in wanted and r.get("perturbation", "none") == "none"
    ]
    if {(int(r["task_id"]), int(r["init_state"])) for r in picked} != wanted:
        return None
    return {"successes": sum(bool(r["success"]) for r in picked), "episodes": len(picked)}


class CellRunner:
    """Trains and evaluates cells of one grid with the real trainer and the LIBERO evaluation harness."""

    def __init__(self, grid: GridSpec, progress: bool = True) -> None:
        self.grid = grid
        self.progress = progress
        self._data: tuple[Path, dict[int, list[int]]] | None = None

    # ---- paths and configs ------------------------------------------------------------------------------
    def run_dir(self, cell: Cell) -> Path:
        return Path(self.grid.out_dir) / self.grid.name / cell.hash

    def data(self) -> tuple[Path, dict[int, list[int]]]:
        """(dataset root, {task: evaluation init states}); demonstrations are generated once (cached)."""
        if self._data is None:
            d, ev = self.grid.data, self.grid.eval
            if d.demos is not None:
                from envs.demo import DemoConfig, ensure_demos, held_out_init_states

                root, used = ensure_demos(DemoConfig(**asdict(d.demos)))
                tasks = ev.task_ids if ev.task_ids is not None else d.demos.task_ids
                init = {int(t): held_out_init_states(used.get(t, []), ev.trials_per_task) for t in tasks}
            else:
                if ev.init_states is None or ev.task_ids is None:
                    raise ValueError(
                        "grid with data.root: give eval.task_ids and eval.init_states (held out)"
                    )
                root = Path(d.root)
                init = {int(t): [int(s) for s in ev.init_states] for t in ev.task_ids}
            self._data = (Path(root), init)
        return self._data

    def train_config(self, cell: Cell, data_root: str | None = None) -> dict:
        """The composed, resolved pion-train config of a cell (what `pion-train` would run)."""
        from omegaconf import OmegaConf, open_dict
        from omegaconf.errors import OmegaConfBaseException

        from vla.config import compose

        overrides = dict(cell.overrides)
        groups, values = _override_groups(overrides)
        cfg = compose("train", [f"+experiment={self.grid.experiment}", *groups])
        for key, value in values.items():
            add = key.startswith("+")
            try:
                if add:
                    with open_dict(cfg):
                        OmegaConf.update(cfg, key[1:], value, merge=True)
                else:
                    OmegaConf.update(cfg, key, value, merge=True)
            except OmegaConfBaseException:
                raise ValueError(
                    f"cell {cell.label}: {key!r} is not a key of the composed pion-train config "
                    f"(+experiment={self.grid.experiment}); prefix it with '+' to add a new key"
                ) from None
        plain = OmegaConf.to_container(cfg, resolve=True)
        ev = self.grid.eval
        steps = int(plain["steps"])
        plain.update(out_dir=str(self.run_dir(cell).parent), run_name=cell.hash, resume=True)
        plain["eval"] = dict(plain.get("eval", {}), every=0)
        ckpt = dict(plain.get("checkpoint", {}))
        ckpt.update(
            every=ev.every if 0 < ev.every < steps else 0, keep_last=len(eval_steps(steps, ev.every)) + 1
        )
        plain["checkpoint"] = ckpt
        if data_root is not None:
            plain["data"] = dict(plain.get("data", {}), root=data_root)
            if self.grid.data.root is not None:
                plain["data"]["repo_id"] = self.grid.data.repo_id
        return plain

    def preflight(self, cell: Cell) -> dict:
        """Compose and validate the cell's config without running anything: {'steps', 'composed_digest'}."""
        from vla.cli.train import CLI_KEYS
        from vla.train import TrainConfig

        cfg = self.train_config(cell)
        try:
            TrainConfig.from_dict({k: v for k, v in cfg.items() if k not in CLI_KEYS})
        except (TypeError, ValueError) as e:
            raise ValueError(f"cell {cell.label}: {e}") from None
        return {"steps": int(cfg["steps"]), "composed_digest": composed_digest(cfg)}

    # ---- the stages -------------------------------------------------------------------------------------
    def _evaluate(
        self, cell: Cell, step: int, cfg: dict, out_name: str, perturbations, per_task=None
    ) -> dict:
        from envs.eval import EvalRun, build_episodes, evaluate
        from vla.train.state import complete_checkpoints

        ev, (_, init) = self.grid.eval, self.data()
        found = dict(complete_checkpoints(self.run_dir(cell))).get(step)
        if found is None:
            raise RuntimeError(f"cell {cell.hash}: no complete checkpoint for step {step} to evaluate")
        episodes = []
        for task, states in init.items():
            states = states[:per_task] if per_task else states
            episodes += build_episodes(
                [ev.suite], [task], len(states), [ev.seed], init_states=states, perturbations=perturbations
            )
        device = str(cfg.get("device", "cpu"))
        run = EvalRun(
            out_dir=self.run_dir(cell) / EVAL_DIR / out_name, policy=str(found / "pretrained"),
            policy_kwargs={"device": "cuda" if device.startswith("cuda") else "cpu"}, workers=ev.workers,
            resolution=ev.resolution, max_steps=ev.max_steps, videos_per_task=0, plot=False,
            progress=self.progress,
        )  # fmt: skip
        return evaluate(run, episodes)

    def evaluate(self, cell: Cell, step: int, cfg: dict) -> dict:
        """Clean evaluation of one checkpoint on the held-out init states (resumes episode by episode)."""
        return self._evaluate(cell, step, cfg, f"step_{step:08d}", (("none", 0),))

    def evaluate_perturbed(self, cell: Cell, step: int, cfg: dict) -> dict:
        """The grid's perturbation suite (every category x severity) on one checkpoint's held-out episodes."""
        spec = self.grid.perturb
        pairs = [(c, s) for c in spec.categories for s in spec.severities]
        name = f"{perturbed_dir_prefix(spec)}{step:08d}"
        return self._evaluate(cell, step, cfg, name, pairs, spec.trials_per_task)

    def run(self, cell: Cell, stop: Callable[[], bool] = lambda: False) -> dict:
        """Train (or resume), evaluate each checkpoint not evaluated yet, return the cell's result."""
        from vla.cli.train import run_training

        root, _ = self.data()
        cfg = self.train_config(cell, str(root))
        if not self.progress:
            cfg["log"] = dict(cfg.get("log", {}), progress=False)
        from vla.train.state import complete_checkpoints

        fresh = not complete_checkpoints(
            self.run_dir(cell)
        )  # e.g. a finished cell re-opened on another machine
        t0 = time.monotonic()
        run_training(cfg)
        train_s = time.monotonic() - t0
        steps = eval_steps(int(cfg["steps"]), self.grid.eval.every)
        for step in steps:
            if stop():
                return self.collect(cell, status="partial", train_s=train_s)
            self.evaluate(cell, step, cfg)
        if self.grid.perturb is not None:
            if stop():
                return self.collect(cell, status="partial", train_s=train_s)
            self.evaluate_perturbed(cell, steps[-1], cfg)
        return self.collect(cell, status="done", train_s=train_s) | (
            {"trained_from_scratch": True} if fresh else {}
        )

    def _collect_perturbed(self, run_dir: Path, init: dict[int, list[int]]) -> dict | None:
        """The grid's perturbation results at the latest step that has all of them; None when incomplete."""
        spec = self.grid.perturb
        if spec is None:
            return None
        per_task = [len(s[: spec.trials_per_task] if spec.trials_per_task else s) for s in init.values()]
        expected = sum(per_task) * len(spec.categories) * len(spec.severities) or None
        prefix = perturbed_dir_prefix(spec)
        for path in sorted((run_dir / EVAL_DIR).glob(f"{prefix}*/summary.json"), reverse=True):
            summary = json.loads(path.read_text())
            cats = summary.get("categories", {})
            if expected is not None and summary["overall"]["episodes"] != expected:
                continue  # interrupted: resumed by the next run, not reported
            keep = ("successes", "episodes", "ci95")
            step = int(path.parent.name.removeprefix(prefix))
            clean = _clean_on_subset(run_dir / EVAL_DIR / f"step_{step:08d}", init, spec.trials_per_task)
            return {
                "spec": spec.as_dict(),
                "step": step,
                **({"clean": clean} if clean else {}),
                "categories": {
                    c: {k: cats[c][k] for k in keep}
                    | {"severities": {s: {k: v[k] for k in keep} for s, v in cats[c]["severities"].items()}}
                    for c in spec.categories
                },
            }
        return None

    def collect(self, cell: Cell, status: str = "partial", train_s: float | None = None) -> dict:
        """The cell's results as its run directory holds them (complete evaluations only)."""
        run_dir = self.run_dir(cell)
        init = self._data[1] if self._data is not None else {}  # never generate data just to collect
        expected = sum(len(s) for s in init.values()) or None
        evals = []
        for path in sorted((run_dir / EVAL_DIR).glob("step_*/summary.json")):  # clean evaluations
            summary = json.loads(path.read_text())
            overall = summary["overall"]
            if expected is not None and overall["episodes"] != expected:
                continue  # interrupted evaluation: resumed by the next run, not reported
            evals.append({
                "step": int(path.parent.name.split("_")[1]), "successes": overall["successes"],
                "episodes": overall["episodes"], "ci95": overall["ci95"],
                **({"per_task": per_task_counts(summary)} if summary.get("tasks") else {}),
            })  # fmt: skip
        perturbed = self._collect_perturbed(run_dir, init)
        metrics = _jsonl(run_dir / "metrics.jsonl")
        zero = [
            {
                "step": r["step"],
                **{k.split("/", 1)[1]: v for k, v in r.items() if k.startswith("zero_update_frac/")},
            }
            for r in metrics
            if any(k.startswith("zero_update_frac/") for k in r)
        ]
        spectral = [
            {
                "step": r["step"],
                **{k.removeprefix("spectral/"): v for k, v in r.items() if k.startswith("spectral/")},
            }
            for r in _jsonl(run_dir / "spectral.jsonl")
        ]
        losses = [[r["step"], r["loss"]] for r in metrics if "loss" in r]
        return {
            "status": status,
            "run_dir": str(run_dir),
            "trained_steps": losses[-1][0] if losses else 0,
            "final_loss": losses[-1][1] if losses else None,
            "train_s": round(train_s, 1) if train_s is not None else None,
            "eval_init_states": {str(t): s for t, s in init.items()},
            "evals": evals,
            **({"perturb": perturbed} if perturbed else {}),
            "loss_curve": _thin(losses),
            "zero_update_frac": _thin(zero),
            "spectral": _thin(spectral),
        }
