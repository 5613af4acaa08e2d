"""pion-eval: batch LIBERO evaluation (configs/eval.yaml, docs/eval.md): run, resume, shard, merge."""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from vla.config import hydra_cli


def episodes_from_config(cfg: DictConfig):
    from envs.eval.episodes import build_episodes
    from envs.eval.perturb import expand_categories

    if cfg.libero_plus.enabled:
        from envs.eval.libero_plus import libero_plus_episodes

        return libero_plus_episodes(list(cfg.suites), seeds=list(cfg.seeds), limit_per_category=cfg.libero_plus.limit_per_category)
    perturbations = [("none", 0)] if not cfg.perturb.categories or cfg.perturb.include_clean else []
    for cat in expand_categories(list(cfg.perturb.categories)):
        perturbations += [(cat, int(s)) for s in cfg.perturb.severities]
    return build_episodes(
        list(cfg.suites),
        None if cfg.task_ids is None else list(cfg.task_ids),
        int(cfg.trials_per_task),
        list(cfg.seeds),
        init_states=None if cfg.init_states is None else list(cfg.init_states),
        perturbations=perturbations,
    )


def run_from_config(cfg: DictConfig) -> dict:
    from envs.eval.harness import EvalRun, evaluate
    from envs.eval.merge import merge

    if cfg.merge:
        return merge(list(cfg.merge), cfg.out_dir, plot=cfg.plot)
    run = EvalRun(
        out_dir=cfg.out_dir, policy=str(cfg.policy), policy_kwargs=OmegaConf.to_container(cfg.policy_kwargs),
        policy_placement=cfg.policy_placement, workers=cfg.workers, shard=cfg.shard, resolution=int(cfg.resolution),
        max_steps=cfg.max_steps, env_seed=int(cfg.env_seed), n_action_steps=cfg.n_action_steps,
        temporal_ensemble=cfg.temporal_ensemble, episode_timeout_s=float(cfg.episode_timeout_s),
        max_attempts=int(cfg.max_attempts), batch_wait_s=float(cfg.batch_wait_s), videos_per_task=int(cfg.videos_per_task),
        video_fps=float(cfg.video_fps), progress=bool(cfg.progress), plot=bool(cfg.plot),
    )
    return evaluate(run, episodes_from_config(cfg))


@hydra_cli("eval")
def main(cfg: DictConfig) -> None:
    """Evaluate a policy on LIBERO suites (configs/eval.yaml)."""
    from envs.libero.tasks import UnknownTaskError

    try:
        run_from_config(cfg)
    except (UnknownTaskError, ValueError, FileNotFoundError) as e:
        raise SystemExit(f"pion-eval: {e}") from None


if __name__ == "__main__":
    main()
