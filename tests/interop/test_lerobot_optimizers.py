"""Pion / Muon as lerobot optimizer configs: registered, parsed from lerobot's CLI syntax, routed by name on a
real lerobot policy (ACT) even though lerobot passes bare tensors, stepping, saved and restored by lerobot's
own optimizer-state functions; and a 5-step `lerobot-train` run with `--optimizer.type=pion` (slow)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import draccus
import pytest
import torch
import yaml
from lerobot.configs.types import FeatureType, PolicyFeature
from lerobot.optim.optimizers import OptimizerConfig, load_optimizer_state, save_optimizer_state
from lerobot.policies.act.configuration_act import ACTConfig
from lerobot.policies.act.modeling_act import ACTPolicy
from lerobot_fixtures import REPO, TINY_ACT, lerobot_train

from vla.interop.lerobot.optimizers import MuonOptimizerConfig, PionOptimizerConfig
from vla.optim import RoutedOptimizer, build_optimizer


def fast(cfg: OptimizerConfig) -> OptimizerConfig:
    """fp32 Newton-Schulz: this CPU has no native bf16 matmul (docs/DESIGN.md)."""
    cfg.pion.ns_dtype = cfg.muon.ns_dtype = "float32"
    return cfg


def tiny_act(seed: int = 0) -> ACTPolicy:
    """A real lerobot ACT policy on robot + environment state (no ResNet: seconds on 2 cores); lerobot-train below uses images."""
    features = {
        "observation.state": PolicyFeature(FeatureType.STATE, (8,)),
        "observation.environment_state": PolicyFeature(FeatureType.ENV, (6,)),
    }
    config = ACTConfig(
        input_features=features,
        output_features={"action": PolicyFeature(FeatureType.ACTION, (7,))},
        **TINY_ACT,
    )
    torch.manual_seed(seed)
    return ACTPolicy(config)


def act_batch(seed: int = 0, b: int = 2) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "observation.state": torch.randn(b, 8, generator=g),
        "observation.environment_state": torch.randn(b, 6, generator=g),
        "action": torch.randn(b, 4, 7, generator=g),
        "action_is_pad": torch.zeros(b, 4, dtype=torch.bool),
    }


@dataclass
class _Cli:
    optimizer: OptimizerConfig | None = None


def parse(*args: str) -> OptimizerConfig:
    return draccus.parse(_Cli, args=list(args)).optimizer


def test_registered_and_parsed_from_lerobot_cli_syntax():
    assert OptimizerConfig.get_choice_class("pion") is PionOptimizerConfig
    assert OptimizerConfig.get_choice_class("muon") is MuonOptimizerConfig
    cfg = parse(
        "--optimizer.type=pion", "--optimizer.preset=vla_adapter", "--optimizer.lr=3e-4",
        "--optimizer.pion.promotion_steps=1", "--optimizer.aux_lr_ratio=0.1",
        '--optimizer.rules=[{"target": "adamw", "pattern": "action_head"}]',
    )  # fmt: skip
    assert isinstance(cfg, PionOptimizerConfig) and cfg.type == "pion"
    assert (cfg.preset, cfg.lr, cfg.pion.promotion_steps, cfg.aux_lr_ratio) == ("vla_adapter", 3e-4, 1, 0.1)
    assert cfg.rules == [{"target": "adamw", "pattern": "action_head"}]
    assert parse("--optimizer.type=muon").preset == "muon"
    encoded = draccus.encode(cfg, OptimizerConfig)  # what lerobot writes into train_config.json
    assert encoded["type"] == "pion" and encoded["pion"]["promotion_steps"] == 1
    with pytest.raises(ValueError, match="not one of"):
        PionOptimizerConfig(preset="vla_adaptr")


@pytest.mark.parametrize("name", ["pion", "muon"])
def test_defaults_equal_configs_optim_yaml(name):
    yml = yaml.safe_load((REPO / f"configs/optim/{name}.yaml").read_text())
    cfg = (PionOptimizerConfig if name == "pion" else MuonOptimizerConfig)().to_optim_cfg()
    for key in ("lr", "weight_decay", "aux_lr_ratio", "per_head", "rules"):
        assert cfg[key] == yml[key], key
    for child in yml.keys() & {"pion", "muon"}:
        assert {k: cfg[child][k] for k in yml[child]} == yml[child], child
    assert list(cfg["adamw"]["betas"]) == yml["adamw"]["betas"] and cfg["adamw"]["eps"] == yml["adamw"]["eps"]


def routes(opt: RoutedOptimizer) -> dict[str, str]:
    return {r.name: r.rule.target for r in opt.routes}


def test_bare_parameters_of_a_lerobot_policy_are_routed_by_name():
    policy = tiny_act()
    cfg = fast(PionOptimizerConfig(verbose=False))
    opt = cfg.build(policy.parameters())  # what lerobot-train passes with use_policy_training_preset=false
    reference = build_optimizer(policy, cfg.to_optim_cfg())  # routing the module itself
    assert routes(opt) == routes(reference)
    assert len(opt.routes) == sum(p.requires_grad for p in policy.parameters())
    assert opt.optimizer_of("model.action_head.weight") == "pion"
    assert (
        opt.optimizer_of("model.encoder_1d_feature_pos_embed.weight") == "adamw"
    )  # embeddings stay on AdamW
    assert opt.optimizer_of("model.action_head.bias") == "adamw"
    # ACT's own preset hands param-group dicts; a name -> tensor dict (XVLA style) works too
    assert routes(cfg.build(policy.get_optim_params())) == routes(reference)
    assert routes(cfg.build(dict(policy.named_parameters()))) == routes(reference)


def test_muon_preset_and_a_training_step_move_every_routed_parameter():
    policy = tiny_act()
    cfg = fast(MuonOptimizerConfig(lr=1e-2, verbose=False))
    opt = cfg.build(policy.parameters())
    assert set(routes(opt).values()) == {"muon", "adamw"}
    before = {n: p.detach().clone() for n, p in policy.named_parameters()}
    loss, _ = policy.forward(act_batch())
    loss.backward()
    opt.step()
    moved = {n for n, p in policy.named_parameters() if not torch.equal(p, before[n])}
    with_grad = {n for n, p in policy.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert with_grad and with_grad <= moved


def test_lerobot_saves_and_restores_the_optimizer_state(tmp_path):
    policy = tiny_act()
    cfg = fast(PionOptimizerConfig(lr=1e-2, verbose=False))
    opt = cfg.build(policy.parameters())
    for seed in range(2):
        opt.zero_grad()
        policy.forward(act_batch(seed))[0].backward()
        opt.step()
    save_optimizer_state(opt, tmp_path)  # lerobot-train's checkpoint writer (JSON param groups)
    groups = json.loads((tmp_path / "optimizer_param_groups.json").read_text())
    assert {g["momentum_convention"] for g in groups if "momentum_convention" in g} == {"ema"}
    fresh = cfg.build(policy.parameters())
    load_optimizer_state(fresh, tmp_path)
    a = opt.state_dict()["state"]
    b = fresh.state_dict()["state"]
    assert a.keys() == b.keys() and all(torch.equal(a[k]["momentum_buffer"], b[k]["momentum_buffer"])
                                        for k in a if "momentum_buffer" in a[k])  # fmt: skip


def test_parameters_without_an_owning_module_are_refused():
    with pytest.raises(ValueError, match="cannot name the 1 parameters"):
        PionOptimizerConfig(verbose=False).build([torch.nn.Parameter(torch.zeros(3, 3))])


@pytest.mark.slow
def test_lerobot_train_runs_five_steps_with_pion(demos_dataset, tmp_path):
    proc = lerobot_train(
        demos_dataset, tmp_path / "run", "--use_policy_training_preset=false", "--optimizer.type=pion",
        "--optimizer.lr=1e-4", "--optimizer.pion.ns_dtype=float32", "--scheduler.type=constant_with_warmup",
        "--scheduler.num_warmup_steps=0",
    )  # fmt: skip
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    assert "optimizer routing (preset 'pion'" in log  # our RoutedOptimizer printed its routing table
    last = tmp_path / "run/checkpoints/000005"
    train_cfg = json.loads((last / "pretrained_model/train_config.json").read_text())
    assert train_cfg["optimizer"]["type"] == "pion" and train_cfg["steps"] == 5
    state = json.loads((last / "training_state/training_step.json").read_text())
    assert state["step"] == 5
    groups = json.loads((last / "training_state/optimizer_param_groups.json").read_text())
    assert any(g.get("bucket") == "action head" for g in groups)  # Pion's group, by routing rule name
