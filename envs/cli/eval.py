"""pion-eval: batch LIBERO evaluation (not implemented yet: says so and exits non-zero, no fake output)."""

from omegaconf import DictConfig

from vla.config import hydra_cli


@hydra_cli("eval")
def main(cfg: DictConfig) -> None:
    """Evaluate a policy on LIBERO suites (configs/eval.yaml)."""
    raise SystemExit(
        "pion-eval is not implemented yet (batch evaluation harness). "
        "For single episodes with a video use `pion-rollout`, e.g. `pion-rollout policy=expert init_states=[0,1]`."
    )
