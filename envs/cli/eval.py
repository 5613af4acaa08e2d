"""pion-eval: batch LIBERO evaluation (configs/eval.yaml, docs/eval.md): run, resume, shard, merge."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vla.config import hydra_cli


@dataclass
class PerturbConfig:
    categories: list[str] = field(
        default_factory=list
    )  # camera robot language light background noise layout | all
    severities: list[int] = field(default_factory=lambda: [1, 3, 5])  # levels 1..5
    include_clean: bool = False  # also run the unperturbed episodes


@dataclass
class LiberoPlusConfig:
    enabled: bool = False  # enumerate the installed LIBERO-Plus package's variants (one trial each)
    limit_per_category: int | None = None  # cap per category (smoke runs)


@dataclass
class EvalConfig:
    """configs/eval.yaml, validated."""

    suites: list[str] = field(default_factory=lambda: ["libero_object"])
    task_ids: list[int] | None = None  # None = every task of each suite
    trials_per_task: int = 50  # init states 0..trials-1
    init_states: list[int] | None = None  # explicit init-state indices (override trials_per_task)
    seeds: list[int] = field(default_factory=lambda: [7])  # each seed repeats every episode
    env_seed: int = 0  # env.seed() before every reset
    max_steps: int | None = None  # None = the suite's standard budget
    resolution: int = 256
    policy: str = (
        "hold"  # any spec of vla.policies.load_policy: name | module:factory | checkpoint dir | tcp://
    )
    policy_kwargs: dict[str, Any] = field(default_factory=dict)  # passed to the policy's factory
    policy_placement: str = "auto"  # worker | parent | auto
    n_action_steps: int | None = None  # actions executed open-loop per query; None = the policy's own
    temporal_ensemble: float | None = None  # k of ACT temporal ensembling; None = off
    workers: Any = "auto"  # "auto" or a number
    episode_timeout_s: float = 900.0
    max_attempts: int = 3
    batch_wait_s: float = 0.05
    shard: str | None = None  # "k/N"
    merge: list[str] | None = None  # result files / run dirs to merge into out_dir instead of running
    perturb: PerturbConfig = field(default_factory=PerturbConfig)
    libero_plus: LiberoPlusConfig = field(default_factory=LiberoPlusConfig)
    videos_per_task: int = 2
    video_fps: float = 10.0
    progress: bool = True
    plot: bool = True
    out_dir: str = "outputs/eval/${policy}"

    def __post_init__(self) -> None:
        if self.workers != "auto" and not (isinstance(self.workers, int) and self.workers >= 1):
            raise ValueError(f"workers must be 'auto' or a positive integer, got {self.workers!r}")
        if self.policy_placement not in ("auto", "worker", "parent"):
            raise ValueError(
                f"policy_placement must be auto, worker or parent, got {self.policy_placement!r}"
            )


def episodes_from_config(cfg: EvalConfig):
    from envs.eval.episodes import build_episodes
    from envs.eval.perturb import expand_categories

    if cfg.libero_plus.enabled:
        from envs.eval.libero_plus import libero_plus_episodes

        return libero_plus_episodes(
            cfg.suites, seeds=cfg.seeds, limit_per_category=cfg.libero_plus.limit_per_category
        )
    perturbations = [("none", 0)] if not cfg.perturb.categories or cfg.perturb.include_clean else []
    for cat in expand_categories(cfg.perturb.categories):
        perturbations += [(cat, int(s)) for s in cfg.perturb.severities]
    return build_episodes(
        cfg.suites,
        cfg.task_ids,
        cfg.trials_per_task,
        cfg.seeds,
        init_states=cfg.init_states,
        perturbations=perturbations,
    )


def run_from_config(cfg: EvalConfig) -> dict:
    from envs.eval.harness import EvalRun, evaluate
    from envs.eval.merge import merge
    from vla.config import build_from
    from vla.policies import spec_kind

    if cfg.merge:
        return merge(cfg.merge, cfg.out_dir, plot=cfg.plot)
    spec_kind(cfg.policy)  # refuse a typo before building episodes and workers
    run = build_from(EvalRun, cfg, policy_kwargs=dict(cfg.policy_kwargs))
    return evaluate(run, episodes_from_config(cfg))


@hydra_cli("eval", schema=EvalConfig)
def main(cfg: EvalConfig) -> None:
    """Evaluate a policy on LIBERO suites (configs/eval.yaml)."""
    run_from_config(cfg)


if __name__ == "__main__":
    main()
