"""lerobot plugin: Pion / Muon optimizer configs and Pion-stack checkpoints as lerobot policy type `pion_vla`.

Importing this package registers everything with lerobot's registries:

- `optimizers.py`: `--optimizer.type=pion` / `muon` (`OptimizerConfig` registry) -> `vla.optim.build_optimizer`;
- `configuration_pion_vla.py`, `modeling_pion_vla.py`, `processor_pion_vla.py`: policy type `pion_vla`
  (lerobot's config / modeling / processor naming convention);
- `export.py`: `pion-lerobot-export <checkpoint>` adds lerobot's files to one of our checkpoints.

lerobot CLIs import it with `--env.discover_packages_path=vla.interop.lerobot` (not under `--policy.`: with
`--policy.path` lerobot hands those to the policy config), or automatically when the `lerobot_policy_pion`
distribution is installed (docs/lerobot.md).
"""

from vla.interop.lerobot import configuration_pion_vla, optimizers  # noqa: F401  (registration side effects)
from vla.interop.lerobot.configuration_pion_vla import POLICY_TYPE, PionVLAConfig
from vla.interop.lerobot.optimizers import MuonOptimizerConfig, PionOptimizerConfig, RoutedOptimizerConfig

__all__ = [
    "POLICY_TYPE",
    "MuonOptimizerConfig",
    "PionOptimizerConfig",
    "PionVLAConfig",
    "RoutedOptimizerConfig",
]
