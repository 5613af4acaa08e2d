"""The eval hook through the real LIBERO harness: a tiny policy checkpoint evaluated during training (~15 s)."""

from __future__ import annotations

import json

from test_policies import MODELS, OPTIM, dataset_root  # noqa: F401  (fixture)

from vla.cli.train import run_training


def test_eval_during_training_logs_wilson_ci_and_best(dataset_root, tmp_path):  # noqa: F811
    cfg = {
        "model": MODELS["vla_adapter"], "optim": OPTIM, "data": {"repo_id": "local/test", "root": str(dataset_root)},
        "pretrained_backbone": False, "steps": 2, "batch_size": 4, "num_workers": 0, "device": "cpu",
        "out_dir": str(tmp_path), "run_name": "e", "log": {"every": 1, "progress": False, "tensorboard": False},
        "eval": {"every": 2, "suite": "libero_object", "task_ids": [0], "trials_per_task": 1, "workers": 1,
                 "max_steps": 8},
    }  # fmt: skip
    result = run_training(cfg)
    rec = json.loads((result.run_dir / "evals.jsonl").read_text().splitlines()[-1])
    assert rec["step"] == 2 and rec["eval/episodes"] == 1.0
    assert 0.0 <= rec["eval/ci95_low"] <= rec["eval/success_rate"] <= rec["eval/ci95_high"] <= 1.0
    assert result.best["step"] == 2 and (result.run_dir / "best.json").is_file()
    assert (result.run_dir / "evals/step_00000002/summary.json").is_file()
