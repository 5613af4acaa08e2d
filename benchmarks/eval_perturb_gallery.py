"""Render the agentview image of libero_object task 0 under each perturbation category and severity.

flock /tmp/pion-heavy.lock python benchmarks/eval_perturb_gallery.py docs/img/eval_perturbations.png
"""

from __future__ import annotations

import sys

import numpy as np


def main(path: str = "docs/img/eval_perturbations.png") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from envs.eval.perturb import CATEGORIES, perturbed_env
    from envs.libero import make_env

    env = make_env("libero_object", 0, resolution=128)
    try:
        clean, _ = env.reset(seed=0, options={"init_state": 0})
        sevs = (1, 3, 5)
        fig, axes = plt.subplots(
            len(sevs), len(CATEGORIES) + 1, figsize=(2 * (len(CATEGORIES) + 1), 2.2 * len(sevs))
        )
        for r, sev in enumerate(sevs):
            axes[r][0].imshow(clean["observation.images.image"])
            axes[r][0].set_title("clean", fontsize=8)
            for c, cat in enumerate(CATEGORIES, start=1):
                penv = perturbed_env(env, cat, sev, seed=7)
                obs, _ = penv.reset(seed=0, options={"init_state": 0})
                axes[r][c].imshow(obs["observation.images.image"])
                title = f"{cat} s{sev}"
                if cat == "language":
                    title += "\n" + "\n".join(
                        obs["task"][i : i + 28] for i in range(0, min(len(obs["task"]), 84), 28)
                    )
                axes[r][c].set_title(title, fontsize=6 if cat == "language" else 8)
        for ax in np.ravel(axes):
            ax.axis("off")
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        print(f"wrote {path}")
    finally:
        env.close()


if __name__ == "__main__":
    main(*sys.argv[1:])
