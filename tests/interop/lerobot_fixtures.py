"""Helpers of the lerobot interoperability tests: a dataset written by pion-gen-demos' writer, a tiny checkpoint
of our format, and the environment of lerobot CLI subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "data"))
from dataset_factory import synthetic_demo  # noqa: E402  (the data tests' synthetic LIBERO demo)

REPO = Path(__file__).resolve().parents[2]
# how lerobot CLIs load the plugin; `--policy.discover_packages_path` would also reach the policy config and be
# rejected there when `--policy.path` is given (lerobot 0.6.1 passes every --policy.* argument on)
PLUGIN_ARG = "--env.discover_packages_path=vla.interop.lerobot"
RES = 32  # image side of the tiny datasets (ACT's ResNet-18 still gives a 1x1 feature map)


def gen_demos_dataset(out: Path, lengths=(14, 11, 12), use_videos: bool = True) -> Path:
    """A dataset exactly as `pion-gen-demos` stores it (shards -> merged `<out>/dataset`), from synthetic demos.

    Only the simulator is left out: `write_shard` and `merge_shards` are the functions pion-gen-demos calls
    (envs/datagen/generate.py), with its defaults (lerobot layout, AV1 videos).
    """
    from envs.datagen.generate import GenConfig
    from envs.datagen.merge import dataset_path, merge_shards
    from envs.datagen.shards import write_shard
    from vla.data.layouts import get_layout

    for i, length in enumerate(lengths):
        demo = synthetic_demo(i % 2, length, seed=i, res=RES)
        write_shard(out, i % 2, i, demo, get_layout("lerobot"), RES, use_videos=use_videos)
    run = GenConfig(
        "libero_object", [0, 1], 2, out, resolution=RES, use_videos=use_videos, command="tests/interop"
    )
    merge_shards(out, run.run_info())
    return dataset_path(out)


def lerobot_env() -> dict[str, str]:
    """Environment of a lerobot CLI subprocess: offline, repo importable (devices are chosen by --policy.device)."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", MUJOCO_GL=os.environ.get("MUJOCO_GL", "egl"))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def lerobot_cli(name: str) -> str:
    exe = Path(sys.executable).parent / name
    assert exe.exists(), f"{name} not installed in the venv (lerobot[training] pins it)"
    return str(exe)


def tiny_checkpoint(
    out: Path, model_type: str = "vla_adapter", input_image_size: int = 48, seed: int = 0
) -> Path:
    """A randomly initialised tiny checkpoint of our format (seconds to build, a few MB)."""
    import torch

    from vla.models.backbone import BackboneConfig
    from vla.models.checkpoint import save_pretrained
    from vla.models.processor import default_stats
    from vla.models.registry import build_processor, model_classes

    backbone = BackboneConfig.cpu(
        image_size=32, patch_size=16, dino_hidden=32, dino_layers=2, dino_heads=2, siglip_hidden=32,
        siglip_layers=2, siglip_heads=2, siglip_mlp=64, llm_hidden=32, llm_layers=2, llm_heads=4, llm_kv_heads=2,
        llm_mlp=64, attn_implementation="eager",
    )  # fmt: skip
    sizes = {
        "vla_adapter": dict(num_action_queries=4, head_heads=2),
        "flow_matching": dict(expert_hidden=32, expert_heads=4, max_positions=16, num_queries=4),
    }[model_type]
    config_cls, model_cls = model_classes(model_type)
    torch.manual_seed(seed)
    model = model_cls(config_cls(backbone=backbone, **sizes))
    overrides = {"prompt_template": "{task}", "input_image_size": input_image_size}
    processor = build_processor(
        model.config, overrides, default_stats(model.config.proprio_dim, model.config.action_dim)
    )
    return save_pretrained(out, model, processor)


# ACT small enough for CPU tests; no pretrained ResNet weights (nothing from a hub)
TINY_ACT = dict(
    dim_model=16, n_heads=2, dim_feedforward=32, n_encoder_layers=1, n_decoder_layers=1, n_vae_encoder_layers=1,
    latent_dim=4, chunk_size=4, n_action_steps=4, pretrained_backbone_weights=None, device="cpu",
)  # fmt: skip


def lerobot_train(dataset: Path, out: Path, *extra: str, plugin: bool = True) -> subprocess.CompletedProcess:
    """A 5-step `lerobot-train` run of tiny ACT on `dataset` (our plugin loaded only if `plugin`)."""
    plugin_arg = [PLUGIN_ARG] if plugin else []
    cmd = [
        lerobot_cli("lerobot-train"), *plugin_arg,
        "--dataset.repo_id=local/pion-libero-demos", f"--dataset.root={dataset}", "--dataset.video_backend=pyav",
        "--policy.type=act", "--policy.push_to_hub=false", *(f"--policy.{k}={v}" for k, v in TINY_ACT.items()),
        "--steps=5", "--batch_size=2", "--num_workers=0", "--log_freq=1", "--save_freq=5", "--seed=0",
        f"--output_dir={out}", *extra,
    ]  # fmt: skip
    cmd = [c.replace("=None", "=null") for c in cmd]
    return subprocess.run(cmd, capture_output=True, text=True, env=lerobot_env(), timeout=600, cwd=out.parent)
