"""Our checkpoints as lerobot policy type `pion_vla`: export, loading through lerobot's own factory (config,
policy, processors) as lerobot-eval does, the same actions as our TorchPolicy, lerobot's save format loading
back in both worlds, refusals, plugin discovery; and `lerobot-eval` in lerobot's LIBERO env (slow)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from lerobot.configs.policies import PreTrainedConfig
from lerobot.configs.types import FeatureType, PolicyFeature
from lerobot.envs.configs import LiberoEnv
from lerobot.policies.factory import get_policy_class, make_policy, make_pre_post_processors
from lerobot_fixtures import PLUGIN_ARG, REPO, lerobot_cli, lerobot_env, tiny_checkpoint

from vla.interop.lerobot.export import export_checkpoint, main
from vla.interop.lerobot.modeling_pion_vla import PionVLAPolicy, to_uint8_images
from vla.models.checkpoint import from_pretrained, load_policy_dir

EVAL_OVERRIDES = {"device_processor": {"device": "cpu"}, "rename_observations_processor": {"rename_map": {}}}


def lerobot_load(path: Path, env_side: int = 48):
    """Policy + processors exactly as lerobot-eval builds them (lerobot_eval.py: eval_main)."""
    cfg = PreTrainedConfig.from_pretrained(path, cli_overrides=["--device=cpu"])
    cfg.pretrained_path = path
    env_cfg = LiberoEnv(task="libero_object", observation_height=env_side, observation_width=env_side)
    policy = make_policy(cfg, env_cfg=env_cfg)
    pre, post = make_pre_post_processors(
        cfg, pretrained_path=str(path), preprocessor_overrides=EVAL_OVERRIDES
    )
    return policy, pre, post


def env_obs(b: int = 2, side: int = 48, seed: int = 0) -> dict:
    """An observation as lerobot's LIBERO env processor hands it on: float images in [0, 1], 8-D state."""
    g = torch.Generator().manual_seed(seed)
    img = lambda: torch.randint(0, 256, (b, 3, side, side), generator=g).float() / 255  # noqa: E731
    return {
        "observation.images.image": img(),
        "observation.images.image2": img(),
        "observation.state": torch.rand(b, 8, generator=g) * 2 - 1,
        "task": ["put the bowl on the plate", "open the drawer"][:b],
    }


@pytest.fixture(scope="module", params=["vla_adapter", "flow_matching"])
def exported(request, tmp_path_factory) -> Path:
    path = tiny_checkpoint(tmp_path_factory.mktemp(request.param) / "ckpt", request.param)
    return export_checkpoint(path)


def test_export_adds_lerobot_files_and_keeps_ours_loadable(exported):
    cfg = json.loads((exported / "config.json").read_text())
    assert cfg["type"] == "pion_vla" and cfg["format_version"] == 1
    assert (exported / "policy_preprocessor.json").is_file() and (
        exported / "policy_postprocessor.json"
    ).is_file()
    model, _ = from_pretrained(exported)  # our own loader ignores lerobot's key
    assert model.config.model_type == cfg["model_type"]
    assert get_policy_class("pion_vla") is PionVLAPolicy


def test_lerobot_factory_runs_the_checkpoint_like_our_torch_policy(exported):
    policy, pre, post = lerobot_load(exported)
    assert isinstance(policy, PionVLAPolicy) and policy.config.type == "pion_vla"
    obs = env_obs()
    ours = load_policy_dir(exported)
    protocol = {
        k: to_uint8_images(v, ours.spec.image_shapes[k]) if k.startswith("observation.images") else v
        for k, v in obs.items()
    }
    protocol["observation.state"] = obs["observation.state"].numpy()
    torch.manual_seed(0)
    expected = ours.predict_chunk(protocol)  # (B, T, A), libero_raw gripper
    torch.manual_seed(0)
    chunk = policy.predict_action_chunk(pre(dict(obs)))
    np.testing.assert_allclose(chunk.numpy(), expected, atol=1e-5)
    assert set(np.unique(expected[..., 6])) <= {-1.0, 1.0}  # LIBERO's raw gripper, as lerobot's env executes


def test_select_action_queues_n_action_steps_and_resizes_env_frames(exported):
    policy, pre, post = lerobot_load(exported, env_side=64)
    n = policy.spec.n_action_steps
    calls = []
    original = policy.runner.predict_chunk
    policy.runner.predict_chunk = lambda batch: calls.append(batch) or original(batch)
    policy.reset()
    actions = [post(policy.select_action(pre(env_obs(side=64)))) for _ in range(n + 1)]
    assert len(calls) == 2 and all(a.shape == (2, 7) for a in actions)
    assert calls[0]["observation.images.image"].shape == (2, 48, 48, 3)  # 64 px env frames -> the 48 px input


def test_lerobot_save_format_loads_in_both_worlds(exported, tmp_path):
    policy, _, _ = lerobot_load(exported)
    policy.save_pretrained(tmp_path / "saved")  # what lerobot-train writes as pretrained_model/
    saved = json.loads((tmp_path / "saved/config.json").read_text())
    assert saved["type"] == "pion_vla" and "input_features" in saved and saved["model_type"]
    ours, _ = from_pretrained(tmp_path / "saved")
    for (name, a), b in zip(policy.model.state_dict().items(), ours.state_dict().values()):
        assert torch.equal(a, b), name
    assert isinstance(PionVLAPolicy.from_pretrained(tmp_path / "saved"), PionVLAPolicy)


def test_forward_trains_with_the_policy_training_preset(exported):
    """lerobot-train on a pion_vla checkpoint: its preset is Pion with the vla_adapter routing, by name."""
    policy, pre, _ = lerobot_load(exported)
    policy.train()
    optimizer = policy.config.get_optimizer_preset()
    optimizer.pion.ns_dtype = optimizer.muon.ns_dtype = "float32"
    optimizer.verbose = False
    opt = optimizer.build(policy.get_optim_params())
    q_proj = {"vla_adapter": "blocks.0.q_proj", "flow_matching": "blocks.0.attn.q_proj"}[
        policy.config.model_type
    ]
    assert opt.optimizer_of(f"model.action_head.{q_proj}.weight") == "pion"
    assert opt.optimizer_of("model.language_model.layers.0.self_attn.q_proj.weight") == "muon"
    vector = next(
        n for n, p in policy.named_parameters() if n.startswith("model.action_head") and p.ndim == 1
    )
    assert opt.optimizer_of(vector) == "adamw"
    g = torch.Generator().manual_seed(1)
    batch = env_obs() | {"action": torch.rand(2, policy.config.chunk_len, 7, generator=g) * 2 - 1}
    batch["action"][..., 6] = batch["action"][..., 6].sign()
    batch["action_is_pad"] = torch.zeros(2, policy.config.chunk_len, dtype=torch.bool)
    loss, metrics = policy.forward(pre(batch))
    assert torch.isfinite(loss) and loss.requires_grad and metrics
    loss.backward()
    before = {k: v.clone() for k, v in policy.model.action_head.state_dict().items()}
    opt.step()
    assert any(not torch.equal(v, policy.model.action_head.state_dict()[k]) for k, v in before.items())


def test_refuses_an_env_with_another_action_dimension(exported):
    cfg = PreTrainedConfig.from_pretrained(exported)
    cfg.output_features = {"action": PolicyFeature(FeatureType.ACTION, (8,))}
    with pytest.raises(ValueError, match="outputs 7-D actions, the env/dataset expects \\(8,\\)"):
        cfg.validate_features()
    cfg.output_features = {"action": PolicyFeature(FeatureType.ACTION, (7,))}
    cfg.input_features = {"observation.images.front": PolicyFeature(FeatureType.VISUAL, (3, 48, 48))}
    with pytest.raises(ValueError, match="rename_map"):
        cfg.validate_features()


def test_fresh_policy_without_a_checkpoint_is_refused(exported):
    with pytest.raises(ValueError, match="--policy.path"):
        PionVLAPolicy(PreTrainedConfig.from_pretrained(exported))


def test_export_cli_bad_input_exits_2(tmp_path, capsys):
    assert main([str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("pion-lerobot-export:") and "\n" not in err


def test_lerobot_discovers_the_plugin_distribution(tmp_path):
    """lerobot imports installed distributions named lerobot_policy_*; ours registers both registries."""
    info = tmp_path / "lerobot_policy_pion-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: lerobot_policy_pion\nVersion: 0.1.0\n")
    code = (
        "from lerobot.utils.import_utils import register_third_party_plugins as r; r();"
        "from lerobot.optim.optimizers import OptimizerConfig as O; from lerobot.configs.policies import "
        "PreTrainedConfig as P; print(sorted({'pion', 'muon'} & set(O.get_known_choices())), "
        "'pion_vla' in P.get_known_choices())"
    )
    path = os.pathsep.join([str(tmp_path), str(REPO / "plugins/lerobot_policy_pion"), str(REPO)])
    env = lerobot_env() | {"PYTHONPATH": path}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split("\n")[-2] == "['muon', 'pion'] True"


@pytest.mark.slow
def test_lerobot_eval_runs_a_checkpoint_in_lerobots_libero_env(tmp_path):
    path = export_checkpoint(tiny_checkpoint(tmp_path / "ckpt", "vla_adapter", input_image_size=64))
    cmd = [
        lerobot_cli("lerobot-eval"), PLUGIN_ARG, f"--policy.path={path}",
        "--policy.device=cpu", "--env.type=libero", "--env.task=libero_object", "--env.task_ids=[0]",
        "--env.episode_length=24", "--env.observation_height=64", "--env.observation_width=64",
        "--eval.n_episodes=1", "--eval.batch_size=1", "--eval.use_async_envs=false", f"--output_dir={tmp_path / 'eval'}",
    ]  # fmt: skip
    from envs.libero_bootstrap import bootstrap

    bootstrap()  # LIBERO's config.yaml (offline) and asset links; sets LIBERO_CONFIG_PATH for the subprocess
    proc = subprocess.run(cmd, capture_output=True, text=True, env=lerobot_env(), timeout=900, cwd=tmp_path)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    info = json.loads((tmp_path / "eval/eval_info.json").read_text())
    overall = info["overall"]
    assert overall["n_episodes"] == 1 and 0.0 <= overall["pc_success"] <= 100.0
