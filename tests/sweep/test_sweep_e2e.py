"""A real 2-cell sweep end to end (slow, ~2 min): tiny VLA-Adapter, synthetic LeRobot dataset, LIBERO evaluation
at two checkpoints per cell, then the perturbation stage (two categories) on the final one. The sweep is SIGKILLed
inside the second cell; the re-run skips the first cell, resumes the second from its checkpoint and records it;
pion-results renders both arms and their perturbation table."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parents[1] / "data"))
from dataset_factory import write_dataset  # noqa: E402

REPO = Path(__file__).parents[2]
TINY_MODEL = {
    "+model.backbone": {"preset": "cpu", "image_size": 32, "patch_size": 16, "dino_hidden": 32, "dino_layers": 2,
                       "dino_heads": 2, "siglip_hidden": 32, "siglip_layers": 2, "siglip_heads": 2, "siglip_mlp": 64,
                       "llm_hidden": 32, "llm_layers": 2, "llm_heads": 4, "llm_kv_heads": 2, "llm_mlp": 64},
    "model.num_action_queries": 4, "model.head_heads": 2, "model.chunk_len": 4, "model.n_action_steps": 4,
    "model.processor": {"input_image_size": 32, "prompt_template": "{task}"},
}  # fmt: skip


def _grid_file(tmp: Path) -> Path:
    root = tmp / "ds"
    write_dataset(root, [20, 20, 20, 20], res=32)
    grid = {
        "name": "tiny", "experiment": "cpu_smoke", "store": str(tmp / "store.jsonl"), "out_dir": str(tmp / "runs"),
        "base": {**TINY_MODEL, "pretrained_backbone": False, "batch_size": 4, "num_workers": 0, "device": "cpu",
                 "steps": 4, "schedule.warmup_steps": 0, "log.every": 1, "log.tensorboard": False,
                 "spectral.every": 2, "optim.lr": 1.0e-3},
        "data": {"root": str(root), "repo_id": "local/test"},
        "eval": {"every": 2, "suite": "libero_object", "task_ids": [0], "init_states": [0], "max_steps": 8,
                 "workers": 1, "resolution": 32},  # = the model's input size: real episodes, not errors
        "perturb": {"categories": ["light", "language"], "severities": [2]},
        "axes": {"optimizer": {"adamw": {"optim": "adamw"},
                               "pion": {"optim": "pion", "optim.pion.ns_dtype": "float32",
                                        "optim.muon.ns_dtype": "float32"}}},
    }  # fmt: skip
    path = tmp / "tiny.yaml"
    path.write_text(yaml.safe_dump(grid))
    return path


def _sweep(grid: Path, log: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen([sys.executable, "-m", "envs.sweep.cli", str(grid)], cwd=REPO, env=env,
                            stdout=open(log, "w"), stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_killed_real_sweep_resumes_only_the_missing_cell(tmp_path):
    from envs.sweep.grid import expand, load_grid
    from envs.sweep.store import ResultsStore

    grid_path = _grid_file(tmp_path)
    cells = expand(load_grid(str(grid_path)))
    second = tmp_path / "runs" / "tiny" / cells[1].hash
    proc = _sweep(grid_path, tmp_path / "first.log")
    deadline = time.monotonic() + 600
    while not (second / "checkpoints" / "step_00000002" / "meta.json").is_file():
        assert proc.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
        assert time.monotonic() < deadline, "the second cell never wrote a checkpoint"
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # the sweep and its eval workers
    proc.wait()
    store = ResultsStore(tmp_path / "store.jsonl")
    assert [r["hash"] for r in store.records()] == [cells[0].hash]

    proc = _sweep(grid_path, tmp_path / "second.log")
    assert proc.wait(timeout=600) == 0, (tmp_path / "second.log").read_text()[-3000:]
    log = (tmp_path / "second.log").read_text()
    assert "2 cells, 1 finished" in log and "1 to run" in log and "resumed" in log
    records = store.records()
    assert [r["hash"] for r in records] == [cells[0].hash, cells[1].hash]
    for rec in records:
        assert rec["status"] == "done" and [e["step"] for e in rec["evals"]] == [2, 4]
        assert all(e["episodes"] == 1 for e in rec["evals"]) and rec["trained_steps"] == 4
        assert all(sum(n for _, n in e["per_task"].values()) == 1 for e in rec["evals"])  # per-task counts
        assert rec["spectral"] and rec["command"].endswith(f"only=[{rec['hash']}]")
    assert records[1]["zero_update_frac"]  # Pion/Muon groups report their exactly-zero update fraction
    for rec in records:  # the final checkpoint under each perturbation category, one episode each
        assert rec["perturb"]["step"] == 4 and rec["perturb"]["spec"]["severities"] == [2]
        assert {c: v["episodes"] for c, v in rec["perturb"]["categories"].items()} == {
            "light": 1,
            "language": 1,
        }
        episodes = (Path(rec["run_dir"]) / "sweep_evals").glob("*/episodes.jsonl")
        assert all(json.loads(ln)["error"] is None for p in episodes for ln in p.read_text().splitlines())
        clean = rec["evals"][-1]  # the paired clean baseline: the same single init state, unperturbed
        assert rec["perturb"]["clean"] == {"successes": clean["successes"], "episodes": 1}

    from envs.sweep.report import write_report

    text = write_report(store.path, tmp_path / "results.md", tmp_path / "img").read_text()
    assert "| optimizer=adamw |" in text and "| optimizer=pion |" in text
    assert (tmp_path / "img" / "tiny_success.png").is_file()
    assert "| arm | seeds | update | clean | light | language | mean of categories |" in text
    assert (tmp_path / "img" / "tiny_perturbations.png").is_file()
    json.dumps(records)  # plain JSON all the way
