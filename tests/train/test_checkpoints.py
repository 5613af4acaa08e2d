"""Checkpoints of the trainer: atomic under an injected failure, keep-last-K (+ best), NaN stop, config-diff
refusal, resume continuing the same trajectory (in process; the SIGKILL version is test_resume_kill.py)."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file
from train_tiny import run

from vla.train import NonFiniteLossError, ResumeError, state
from vla.train.checkpointing import load_weights


def _cfg(tmp_path, **kw):
    cfg = {"steps": 10, "batch_size": 8, "out_dir": str(tmp_path), "run_name": "r", "num_workers": 0,
           "log": {"every": 1, "progress": False, "tensorboard": False}, "checkpoint": {"every": 5, "keep_last": 5}}  # fmt: skip
    for k, v in kw.items():
        cfg[k] = {**cfg[k], **v} if isinstance(v, dict) and k in cfg else v
    return cfg


def _losses(run_dir):
    return {
        r["step"]: r["loss"] for r in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines())
    }


def test_checkpoint_contents_and_resume_continues_exactly(tmp_path):
    ref = run(_cfg(tmp_path / "ref", steps=14))
    run(_cfg(tmp_path / "cut", steps=14, checkpoint={"every": 7}))  # same run, checkpoints at 7 and 14
    ckpt = tmp_path / "cut/r/checkpoints/step_00000007"
    assert {p.name for p in ckpt.iterdir()} >= {"pretrained", "trainer_state.pt", "rank0.pt", "meta.json"}
    meta = json.loads((ckpt / "meta.json").read_text())
    assert meta["step"] == 7 and meta["weights"] == "pretrained/model.safetensors"
    trainer = torch.load(ckpt / "trainer_state.pt", weights_only=False)
    assert {"optimizer", "scheduler", "step"} <= set(trainer)
    # every routed child has state (momentum for Pion/Muon, moments for AdamW)
    assert len(trainer["optimizer"]["state"]) == sum(1 for p in ref_params())
    rank = torch.load(ckpt / "rank0.pt", weights_only=False)
    assert set(rank["rng"]) >= {"python", "numpy", "torch"} and rank["sampler"]["global"] == 7 % 12
    # delete the final checkpoint and resume from step 7: the second half replays bit for bit
    state.prune(tmp_path / "cut/r", keep_last=1)  # keeps 14 only ...
    assert [s for s, _ in state.complete_checkpoints(tmp_path / "cut/r")] == [14]
    run(_cfg(tmp_path / "half", steps=7))
    run(_cfg(tmp_path / "half", steps=14, resume=True))
    assert _losses(tmp_path / "half/r") == _losses(ref.run_dir)
    a = load_file(tmp_path / "half/r/checkpoints/step_00000014/pretrained/model.safetensors")
    b = load_file(ref.run_dir / "checkpoints/step_00000014/pretrained/model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)


def ref_params():
    from train_tiny import TinyConfig, TinyPolicy

    return TinyPolicy(TinyConfig()).parameters()


def test_failed_write_leaves_previous_checkpoint_loadable(tmp_path, monkeypatch):
    run(_cfg(tmp_path, steps=10))
    real = state.write_meta

    def disk_full(tmp, meta):
        if meta["step"] == 15:
            raise OSError(28, "No space left on device (injected)")
        real(tmp, meta)

    monkeypatch.setattr(state, "write_meta", disk_full)
    with pytest.raises(OSError, match="injected"):
        run(_cfg(tmp_path, steps=20, resume=True))
    run_dir = tmp_path / "r"
    assert [s for s, _ in state.complete_checkpoints(run_dir)] == [5, 10]
    assert (run_dir / "checkpoints/.tmp-step_00000015/pretrained/model.safetensors").is_file()  # half-written
    from train_tiny import TinyConfig, TinyPolicy

    load_weights(run_dir / "checkpoints/step_00000010", TinyPolicy(TinyConfig()))  # previous one still loads
    monkeypatch.setattr(state, "write_meta", real)
    result = run(_cfg(tmp_path, steps=20, resume=True))  # resumes from 10, overwrites the leftover
    assert result.step == 20
    assert [s for s, _ in state.complete_checkpoints(run_dir)] == [5, 10, 15, 20]
    assert not list((run_dir / "checkpoints").glob(".tmp-*"))


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    with pytest.raises(NonFiniteLossError, match=r"non-finite loss \(nan\) at step 13.*step_00000010"):
        run(_cfg(tmp_path, steps=20), poison=13)
    assert [s for s, _ in state.complete_checkpoints(tmp_path / "r")] == [5, 10]
    assert max(_losses(tmp_path / "r")) == 12  # nothing logged for the bad step


def test_keep_last_k_and_best_checkpoint(tmp_path):
    scores = {4: 3, 8: 9, 12: 5, 16: 4, 20: 6}  # successes out of 10 at each evaluated step

    def evaluate(export_dir, step):
        assert (export_dir / "model.safetensors").is_file()
        return {"overall": {"episodes": 10, "successes": scores[step]}}

    result = run(_cfg(tmp_path, steps=20, checkpoint={"every": 4, "keep_last": 2}, eval={"every": 4}),
                 evaluate_fn=evaluate)  # fmt: skip
    assert [s for s, _ in state.complete_checkpoints(tmp_path / "r")] == [8, 16, 20]  # last 2 + best
    assert result.best["step"] == 8 and result.best["eval/success_rate"] == 0.9
    lo, hi = result.best["eval/ci95_low"], result.best["eval/ci95_high"]
    assert lo == pytest.approx(0.5958, abs=1e-4) and hi == pytest.approx(0.9821, abs=1e-4)  # Wilson 9/10
    assert json.loads((tmp_path / "r/best.json").read_text())["step"] == 8
    assert [json.loads(x)["step"] for x in (tmp_path / "r/evals.jsonl").read_text().splitlines()] == [
        4,
        8,
        12,
        16,
        20,
    ]


def test_resume_with_other_model_config_is_refused(tmp_path):
    run(_cfg(tmp_path, steps=5))
    with pytest.raises(ResumeError, match=r"hidden: 32 \(checkpoint\) != 16 \(now\)") as err:
        run(_cfg(tmp_path, steps=10, resume=True), model_cfg={"hidden": 16, "layers": 2})
    assert "layers" not in str(err.value)  # only the differing keys are named


def test_resume_latest_run_without_run_name(tmp_path):
    cfg = _cfg(tmp_path, steps=5, run_name=None)
    first = run(cfg)
    again = run({**cfg, "steps": 8, "resume": True})
    assert again.run_dir == first.run_dir and again.step == 8
    with pytest.raises(ResumeError, match="no run with a complete checkpoint"):
        run({**cfg, "out_dir": str(tmp_path / "empty"), "resume": True})
