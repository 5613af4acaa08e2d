"""pion-train: train a VLA policy (not implemented yet: says so and exits non-zero, no fake output)."""

import sys

from omegaconf import DictConfig

from vla.config import hydra_cli


@hydra_cli("train")
def main(cfg: DictConfig) -> None:
    """Train a VLA policy (configs/train.yaml)."""
    print(
        "pion-train is not implemented yet: the policy models and trainer have not landed. "
        "The optimizers are usable as a library: `from vla.optim import build_optimizer`.",
        file=sys.stderr,
    )
    raise SystemExit(2)
