"""The GPU recipes of the paper (configs/experiment/paper_*.yaml) compose with the config loader and hold the
values of ../shared/reference/pion.md §12 (no run)."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from vla.cli.train import CLI_KEYS
from vla.config import compose
from vla.train import TrainConfig


def _compose(experiments: str) -> dict:
    cfg = OmegaConf.to_container(compose("train", [f"+experiment={experiments}"]), resolve=True)
    TrainConfig.from_dict({k: v for k, v in cfg.items() if k not in CLI_KEYS})  # trainer keys validate
    return cfg


@pytest.mark.parametrize(("arm", "preset"), [("adamw", "adamw"), ("muon", "muon"), ("pion", "vla_adapter")])
def test_vla_adapter_recipes(arm, preset):
    cfg = _compose(f"paper_vla_adapter_{arm}")
    assert cfg["model"]["backbone"]["preset"] == "real" and cfg["model"]["name"] == "vla_adapter"
    assert (cfg["steps"], cfg["batch_size"], cfg["grad_clip"], cfg["lora"]["enabled"]) == (
        1500,
        64,
        None,
        False,
    )
    assert (cfg["optim"]["preset"], cfg["optim"]["lr"], cfg["optim"]["weight_decay"]) == (preset, 1e-4, 1e-2)
    assert cfg["schedule"]["name"] == "multistep" and cfg["schedule"]["milestones"] == [100000]
    assert cfg["checkpoint"]["every"] == 500 and cfg["eval"]["trials_per_task"] == 50
    for child in ("pion", "muon"):
        if child in cfg["optim"]:
            c = cfg["optim"][child]
            assert (c["scale_factor"], c["momentum"], c["nesterov"], c["ns_steps"]) == (0.2, 0.95, True, 5)
    if arm == "pion":
        assert cfg["optim"]["pion"]["promotion_steps"] == 0 and cfg["optim"]["per_head"] is False
    long = _compose(f"[paper_vla_adapter_{arm},paper_budget_15k]")
    assert long["steps"] == 15000 and long["optim"] == cfg["optim"] and long["batch_size"] == 64


@pytest.mark.parametrize(
    ("arm", "preset", "aux"), [("adamw", "adamw", 1.0), ("muon", "muon", 0.1), ("pion", "vlanext", 0.1)]
)
def test_vlanext_recipes(arm, preset, aux):
    cfg = _compose(f"paper_vlanext_{arm}")
    assert cfg["model"]["name"] == "flow_matching" and cfg["model"]["backbone"]["preset"] == "real"
    assert (cfg["steps"], cfg["batch_size"], cfg["grad_clip"], cfg["seed"]) == (10000, 256, 1.0, 2026)
    assert (cfg["schedule"]["name"], cfg["schedule"]["warmup_steps"]) == ("cosine", 300)
    assert (cfg["optim"]["preset"], cfg["optim"]["lr"], cfg["optim"]["weight_decay"]) == (preset, 1e-4, 0.01)
    assert cfg["optim"]["aux_lr_ratio"] == aux
    if arm == "pion":
        assert cfg["optim"]["pion"]["promotion_steps"] == 0 and cfg["optim"]["pion"]["scale_factor"] == 0.2
