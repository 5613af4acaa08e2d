"""`model=lerobot`: the validated config of a lerobot policy trained by pion-train (configs/model/lerobot.yaml).

    config = LerobotModelConfig.from_dict(model_yaml)      # unknown keys, bad types, missing dirs raise here
    config.lerobot_config(features, device)                 # lerobot's PreTrainedConfig of `policy_type`
    config.routing_preset("vla_adapter")                    # -> "act" for ACT (the optim group's preset mapped)

Nothing here downloads: `pretrained_path` and `tokenizer_path` must be local directories. Imports of lerobot
happen inside the methods, so reading a config costs nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MODEL_NAME = "lerobot"
# optim.preset (what configs/optim/pion.yaml / muon.yaml set) -> this policy type's recipe of the same kind
POLICY_PRESETS: dict[str, dict[str, str]] = {
    "act": {"vla_adapter": "act", "muon": "act_muon"},
    "pi05": {"vla_adapter": "pi05", "muon": "pi05_muon"},
    "smolvla": {"vla_adapter": "smolvla", "muon": "smolvla_muon"},
}


class LerobotConfigError(ValueError):
    """A `model=lerobot` config cannot be built; the message names the key and the fix."""


@dataclass
class LerobotModelConfig:
    """One lerobot policy for pion-train.

    Args:
        policy_type: a lerobot policy type (`act`, `smolvla`, `pi05`, `pi0`, `diffusion`, ...).
        pretrained_path: local directory in lerobot's `save_pretrained` format (config.json + model.safetensors)
            to start from; null = random init. Never a hub id.
        overrides: fields of the lerobot `PreTrainedConfig` (e.g. `chunk_size`, `dim_model`, `n_action_steps`);
            applied on top of the pretrained config when there is one.
        image_keys: the dataset cameras the policy sees; null = every camera of the dataset.
        rename_map: dataset key -> policy key (e.g. a pretrained policy's camera names).
        tokenizer_path: local HF tokenizer directory for policies that tokenise the task (pi05: PaliGemma's,
            smolvla: the SmolVLM's); copied into every checkpoint so loading stays offline.
        action_space: declared in checkpoints (vla.conventions); null = from the dataset layout
            (DROID layouts -> droid_joint_velocity, else libero_osc_delta).
        map_optim_presets: map the optim group's generic presets to this policy's recipe (`POLICY_PRESETS`):
            `vla_adapter` (optim=pion) -> act / pi05 / smolvla, `muon` (optim=muon) -> act_muon / ...
    """

    policy_type: str = "act"
    pretrained_path: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    image_keys: list[str] | None = None
    rename_map: dict[str, str] = field(default_factory=dict)
    tokenizer_path: str | None = None
    action_space: str | None = None
    map_optim_presets: bool = True

    def __post_init__(self) -> None:
        import lerobot.policies  # noqa: F401  (registers lerobot's built-in policy types)
        from lerobot.configs.policies import PreTrainedConfig

        known = sorted(PreTrainedConfig.get_known_choices())
        if self.policy_type not in known:
            raise LerobotConfigError(
                f"model.policy_type {self.policy_type!r} is not a lerobot policy type; choose one of {known}"
            )
        for key in ("pretrained_path", "tokenizer_path"):
            path = getattr(self, key)
            if path is not None and not Path(path).is_dir():
                raise LerobotConfigError(
                    f"model.{key}={path!r} is not a local directory (nothing is downloaded); "
                    f"pass a directory{' in lerobot save_pretrained format' if key == 'pretrained_path' else ''} "
                    "or null"
                )
        if self.pretrained_path is not None and not (Path(self.pretrained_path) / "config.json").is_file():
            raise LerobotConfigError(
                f"model.pretrained_path={self.pretrained_path!r} has no config.json; it must be a lerobot "
                "save_pretrained directory (config.json + model.safetensors)"
            )
        if not isinstance(self.overrides, Mapping) or not isinstance(self.rename_map, Mapping):
            raise LerobotConfigError("model.overrides and model.rename_map must be mappings")
        self.overrides, self.rename_map = dict(self.overrides), dict(self.rename_map)
        if self.action_space is not None:
            from vla.conventions import action_space

            action_space(self.action_space)  # raises on an unknown name

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LerobotModelConfig:
        d = {k: v for k, v in dict(d).items() if k not in ("name", "model_type")}
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise LerobotConfigError(
                f"unknown model keys {unknown} for model=lerobot; valid: {sorted(names)}"
            )
        return cls(**d)

    def to_dict(self) -> dict[str, Any]:
        return {"name": MODEL_NAME, **dataclasses.asdict(self)}

    def lerobot_config(self, input_features: dict, output_features: dict, device: str):
        """lerobot's PreTrainedConfig: pretrained_path's config.json (type checked) or a fresh one, + overrides."""
        from lerobot.configs.policies import PreTrainedConfig
        from lerobot.policies.factory import make_policy_config

        try:
            if self.pretrained_path is not None:
                config = PreTrainedConfig.from_pretrained(self.pretrained_path)
                if config.type != self.policy_type:
                    raise LerobotConfigError(
                        f"model.pretrained_path={self.pretrained_path!r} holds a {config.type!r} policy, "
                        f"model.policy_type is {self.policy_type!r}"
                    )
                for key, value in self.overrides.items():
                    if not hasattr(config, key):
                        raise TypeError(f"unexpected keyword argument {key!r}")
                    setattr(config, key, value)
                config.__post_init__()
                config.pretrained_path = Path(self.pretrained_path)
            else:
                config = make_policy_config(self.policy_type, **self.overrides)
        except TypeError as e:
            raise LerobotConfigError(
                f"model.overrides do not fit lerobot's {self.policy_type} config: {e}"
            ) from e
        config.device = device
        config.input_features, config.output_features = dict(input_features), dict(output_features)
        return config

    def routing_preset(self, preset: str) -> str:
        """The routing preset to use for the optim group's `preset` (see `map_optim_presets`)."""
        if not self.map_optim_presets:
            return preset
        return POLICY_PRESETS.get(self.policy_type, {}).get(preset, preset)
