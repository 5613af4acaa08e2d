"""A dataset written the way pion-gen-demos writes it trains lerobot's ACT unchanged: in-process through
lerobot-train's own dataset / policy / processor factories (fast), and with the `lerobot-train` CLI (slow)."""

from __future__ import annotations

import json
import subprocess
import sys

import draccus
import pytest
import torch
from lerobot.configs.train import TrainPipelineConfig
from lerobot.datasets.factory import make_dataset
from lerobot.policies.factory import make_policy, make_pre_post_processors
from lerobot_fixtures import REPO, RES, TINY_ACT, lerobot_env, lerobot_train

from vla.data.layouts import get_layout

REPO_ID = "local/pion-libero-demos"


def train_args(dataset) -> list[str]:
    args = [f"--dataset.repo_id={REPO_ID}", f"--dataset.root={dataset}", "--dataset.video_backend=pyav",
            "--policy.type=act", "--policy.push_to_hub=false", "--batch_size=2"]  # fmt: skip
    return args + [f"--policy.{k}={'null' if v is None else v}" for k, v in TINY_ACT.items()]


def test_layout_is_lerobot_libero(demos_dataset):
    info = json.loads((demos_dataset / "meta/info.json").read_text())
    assert set(get_layout("lerobot").keys.values()) <= set(info["features"])
    assert (
        info["features"]["observation.images.image"]["dtype"] == "video"
    )  # pion-gen-demos' default (AV1 MP4)
    assert info["features"]["action"]["shape"] == [7] and info["total_episodes"] == 3


def test_lerobot_train_pipeline_takes_a_step_on_it(demos_dataset):
    # deterministic ACT (no dropout, no VAE sampling) so that three steps on one batch must lower the loss
    cfg = draccus.parse(
        TrainPipelineConfig, args=[*train_args(demos_dataset), "--policy.dropout=0", "--policy.use_vae=false"]
    )
    cfg.validate()
    torch.manual_seed(0)
    dataset = make_dataset(cfg)  # lerobot-train's own calls, in its order (scripts/lerobot_train.py: train)
    policy = make_policy(cfg.policy, ds_meta=dataset.meta)
    pre, _ = make_pre_post_processors(cfg.policy, dataset_stats=dataset.meta.stats)
    batch = next(iter(torch.utils.data.DataLoader(dataset, batch_size=2, shuffle=False)))
    for key in dataset.meta.camera_keys:
        assert batch[key].dtype == torch.uint8 and batch[key].shape == (2, 3, RES, RES)
        batch[key] = batch[key].float() / 255
    assert batch["action"].shape == (2, TINY_ACT["chunk_size"], 7)
    optimizer = cfg.optimizer.build(policy.get_optim_params())
    losses = []
    for _ in range(3):
        loss, _ = policy.forward(pre(dict(batch)))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss))
    assert all(torch.isfinite(torch.tensor(losses))) and losses[-1] < losses[0]


@pytest.mark.slow
def test_lerobot_train_cli_trains_act_on_it_unchanged(demos_dataset, tmp_path):
    # stock lerobot-train: no plugin, ACT's own training preset (AdamW)
    proc = lerobot_train(demos_dataset, tmp_path / "run", plugin=False)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    state = json.loads((tmp_path / "run/checkpoints/000005/training_state/training_step.json").read_text())
    assert state["step"] == 5


@pytest.mark.slow
def test_pion_gen_demos_cli_output_trains_with_lerobot_train(tmp_path):
    """The whole path: the scripted expert in LIBERO -> pion-gen-demos -> stock lerobot-train (5 ACT steps)."""
    gen = [
        sys.executable, "-m", "envs.cli.gen_demos", "env=libero_object", "tasks=[0]", "episodes_per_task=1",
        f"resolution={RES}", "progress=false", f"out={tmp_path / 'demos'}", f"hydra.run.dir={tmp_path / 'hydra'}",
    ]  # fmt: skip
    proc = subprocess.run(gen, cwd=REPO, env=lerobot_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    proc = lerobot_train(tmp_path / "demos/dataset", tmp_path / "run", plugin=False)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    state = json.loads((tmp_path / "run/checkpoints/000005/training_state/training_step.json").read_text())
    assert state["step"] == 5
