"""What `pion-train model=lerobot` hands the trainer: data, policy, processor, optimizer config, export.

    parts = lerobot_training_parts(model_yaml, data_cfg, optim_cfg, device="cpu")
    Trainer(cfg, model=parts["model"], processor=parts["processor"], ..., export_fn=parts["export_fn"])

`vla.cli.train.run_training` calls this instead of the registry when the model group's `name` is `lerobot`;
everything else (loop, optimizer routing, schedules, checkpoints, resume, logging) is the trainer's own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vla.interop.lerobot.policy_adapter import build_policy, save_checkpoint
from vla.interop.lerobot.policy_config import LerobotConfigError, LerobotModelConfig

POLICY_FACTORY = "vla.interop.lerobot.protocol_policy:load_lerobot_policy"  # the eval hook's policy


def chunk_len_of(config: LerobotModelConfig) -> int:
    """The policy's action chunk = the data's chunk_len; refuses policies that need other offsets.

    `vla.data` samples hold one observation and the actions from that frame on (offsets 0 .. T-1), which is what
    ACT / SmolVLA / π0 / π0.5 ask for; observation histories (diffusion's n_obs_steps) are not supported.
    """
    base = config.lerobot_config({}, {}, "cpu")
    actions = list(base.action_delta_indices or [0])
    if actions != list(range(len(actions))):
        raise LerobotConfigError(
            f"lerobot {config.policy_type} wants action offsets {actions[:3]}..{actions[-1]}; pion-train's data "
            "gives actions 0..T-1 from the current frame only"
        )
    if base.observation_delta_indices not in (None, [0]):
        raise LerobotConfigError(
            f"lerobot {config.policy_type} wants an observation history {base.observation_delta_indices}; "
            "pion-train's data gives the current frame only"
        )
    return len(actions)


def lerobot_training_parts(
    model_yaml: Mapping[str, Any], data_cfg: Mapping[str, Any], optim_cfg: Mapping[str, Any], device: str
) -> dict[str, Any]:
    from vla.cli.train import build_data

    config = LerobotModelConfig.from_dict(model_yaml)
    dataset, stats = build_data(dict(data_cfg), chunk_len_of(config))
    model, processor = build_policy(config, dataset, stats, device=device)
    optim_cfg = dict(optim_cfg)
    preset = optim_cfg.get("preset", "vla_adapter")
    optim_cfg["preset"] = config.routing_preset(preset)
    if optim_cfg["preset"] != preset:
        print(
            f"[pion-train] lerobot {config.policy_type}: optim.preset {preset} -> {optim_cfg['preset']}",
            flush=True,
        )
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    print(f"[pion-train] lerobot {config.policy_type}: {trainable:,} trainable parameters", flush=True)
    return {
        "model": model,
        "processor": processor,
        "dataset": dataset,
        "optim_cfg": optim_cfg,
        "identity": {"model": config.to_dict()},
        "export_fn": save_checkpoint,
        "extra_meta": {
            "model_type": f"lerobot:{config.policy_type}",
            "action_space": processor.meta["action_space"],
        },
        "policy_factory": POLICY_FACTORY,
    }


__all__ = ["LerobotConfigError", "chunk_len_of", "lerobot_training_parts"]
