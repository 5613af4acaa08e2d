"""`pion-gen-demos`: generate scripted LIBERO demonstrations as a LeRobotDataset (config: configs/gen_demos.yaml).

    pion-gen-demos env=libero_object episodes_per_task=50 workers=2
    pion-gen-demos env=libero_spatial tasks=[0,4] episodes_per_task=10 out=/data/spatial_small

Re-running the same command resumes: finished episodes are kept, never duplicated.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from vla.config import hydra_cli


def _task_ids(spec, suite: str) -> list[int]:
    from envs.libero.tasks import num_tasks

    if spec == "all":
        return list(range(num_tasks(suite)))
    if isinstance(spec, int):
        return [spec]
    try:
        return [int(t) for t in spec]
    except (TypeError, ValueError) as e:
        raise SystemExit(f"error: tasks must be 'all', an int or a list of ints, got {spec!r}") from e


def run(cfg) -> Path | None:
    from envs.datagen.generate import GenConfig, GenerationError, generate
    from envs.experts.scene import UnsupportedTaskError
    from envs.libero.tasks import UnknownTaskError
    from vla.data.layouts import LayoutError

    args = [a for a in sys.argv[1:] if not a.startswith("hydra.")]
    try:
        gen = GenConfig(
            suite=cfg.env.suite,
            tasks=_task_ids(cfg.tasks, cfg.env.suite),
            episodes_per_task=int(cfg.episodes_per_task),
            out=Path(cfg.out),
            seed=int(cfg.seed),
            resolution=int(cfg.resolution),
            layout=str(cfg.layout),
            workers=int(cfg.workers),
            action_noise=float(cfg.action_noise),
            max_attempts_per_task=int(cfg.max_attempts_per_task),
            merge_every=int(cfg.merge_every),
            use_videos=bool(cfg.use_videos),
            command=shlex.join(["pion-gen-demos", *args]),
            progress=bool(cfg.progress),
        )
        return generate(gen)
    except (GenerationError, UnknownTaskError, UnsupportedTaskError, LayoutError) as e:
        raise SystemExit(f"error: {e}") from e


@hydra_cli("gen_demos")
def main(cfg) -> None:
    """Generate N successful scripted demonstrations per LIBERO task (see configs/gen_demos.yaml)."""
    run(cfg)


if __name__ == "__main__":
    main()
