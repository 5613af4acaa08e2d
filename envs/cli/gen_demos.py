"""`pion-gen-demos`: generate scripted LIBERO demonstrations as a LeRobotDataset (config: configs/gen_demos.yaml).

    pion-gen-demos env=libero_object episodes_per_task=50 workers=2
    pion-gen-demos env=libero_spatial 'tasks=[0,4]' episodes_per_task=10 out=/data/spatial_small

Re-running the same command resumes: finished episodes are kept, never duplicated.
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vla.config import hydra_cli


@dataclass
class EnvConfig:
    """configs/env/<suite>.yaml."""

    suite: str = "libero_object"
    resolution: int = 256  # camera resolution (square)


@dataclass
class GenDemosConfig:
    """configs/gen_demos.yaml, validated."""

    env: EnvConfig = field(default_factory=EnvConfig)
    tasks: Any = "all"  # "all", an int, or a list of task ids
    episodes_per_task: int = 50  # successful episodes kept per task
    seed: int = 0  # init-state order, env seed, action noise
    resolution: int = 256  # defaults to env.resolution in the YAML
    layout: str = "lerobot"  # lerobot | openpi
    workers: Any = "auto"  # parallel simulator processes: a number, or "auto" = one per core
    action_noise: float = 0.0  # std of Gaussian noise on the 6 motion dims
    max_attempts_per_task: int = 100
    merge_every: int = 20  # re-merge the loadable dataset every N new episodes
    use_videos: bool = True  # MP4 videos like lerobot/libero; false stores PNG frames in parquet
    progress: bool = True
    out: str = "outputs/demos/libero_object_seed0"  # the YAML derives it from env.suite and seed


def task_ids(spec: Any, suite: str) -> list[int]:
    """'all', an int or a list of ints -> task ids (ValueError otherwise)."""
    from envs.libero.tasks import num_tasks

    if spec == "all":
        return list(range(num_tasks(suite)))
    if isinstance(spec, int) and not isinstance(spec, bool):
        return [spec]
    try:
        return [int(t) for t in spec]
    except (TypeError, ValueError) as e:
        raise ValueError(f"tasks must be 'all', an int or a list of ints, got {spec!r}") from e


def resolve_workers(spec: Any) -> int:
    """Workers "auto" -> one simulator per usable core, fewer where memory is short (`envs.workers`, the same
    rule as pion-eval); else the number itself (range-checked by envs.datagen.generate.validate)."""
    from envs.workers import auto_workers

    if spec == "auto":
        return auto_workers("auto")
    if isinstance(spec, int) and not isinstance(spec, bool):
        return spec
    raise ValueError(f"workers must be 'auto' or a number, got {spec!r}")


def run(cfg: GenDemosConfig | Any) -> Path | None:
    """Generate from a validated config (a composed DictConfig is validated first); bad input raises ValueError."""
    from envs.datagen.generate import GenConfig, generate
    from vla.config import build_from, load_config

    if not isinstance(cfg, GenDemosConfig):
        cfg = load_config(GenDemosConfig, cfg, "gen_demos")

    args = [a for a in sys.argv[1:] if not a.startswith("hydra.")]
    gen = build_from(
        GenConfig,
        cfg,
        workers=resolve_workers(cfg.workers),
        suite=cfg.env.suite,
        tasks=task_ids(cfg.tasks, cfg.env.suite),
        out=Path(cfg.out),
        command=shlex.join(["pion-gen-demos", *args]),
    )
    return generate(gen)


@hydra_cli("gen_demos", schema=GenDemosConfig)
def main(cfg: GenDemosConfig) -> None:
    """Generate N successful scripted demonstrations per LIBERO task (see configs/gen_demos.yaml)."""
    run(cfg)


if __name__ == "__main__":
    main()
