"""The dataset card (README.md) of a generated dataset: what it contains and exactly how it was made."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from envs.datagen.noop import NOOP_THRESHOLD


def write_card(root: Path, run: dict, episodes: list[dict]) -> None:
    per_task = Counter(e["task_id"] for e in episodes)
    frames = sum(e["frames"] for e in episodes)
    lines = [
        "---",
        "license: mit",
        "tags: [LIBERO, robotics, lerobot, scripted-demonstrations]",
        "---",
        f"# Scripted LIBERO demonstrations: {run['suite']}",
        "",
        f"{len(episodes)} successful episodes, {frames} frames, generated in simulation by the `pion-vla` "
        "scripted pick-and-place expert (privileged simulator state, 7-D OSC delta actions).",
        "",
        "## How it was made",
        f"- command: `{run['command']}`",
        f"- suite `{run['suite']}`, tasks {run['tasks']}, {run['episodes_per_task']} successful episodes per task, "
        f"seed {run['seed']}, action noise std {run['action_noise']}",
        "- standard protocol: the task's fixed init states (attempt k uses a seeded permutation of 0..49), "
        "10 wait steps of [0,0,0,0,0,0,-1] before recording, the suite's step budget, success from the "
        "environment's BDDL goal check; failed attempts are discarded",
        f"- no-op filter: a step is dropped when ||a[:6]|| < {NOOP_THRESHOLD} and its gripper command equals "
        "the previous step's (the rule of the public regenerated datasets)",
        f"- cameras: agentview and wrist at {run['resolution']}x{run['resolution']}, rotated 180 degrees "
        "(the convention of `lerobot/libero`), rendered after the physics of each step",
        f"- layout `{run['layout']}`; state 8-D (eef pos, axis-angle, 2 finger qpos); action 7-D raw LIBERO "
        "(gripper -1 open, +1 close); fps declared 10 like the public data (the simulator runs at 20 Hz)",
        "",
        "## Episodes per task",
        "| task | instruction | episodes |",
        "|---|---|---|",
    ]
    instructions = {e["task_id"]: e["task"] for e in episodes}
    lines += [f"| {t} | {instructions[t]} | {per_task[t]} |" for t in sorted(per_task)]
    attempts = run.get("attempts")
    if attempts:
        lines += ["", "## Expert success during generation", "| task | successes / attempts |", "|---|---|"]
        lines += [f"| {t} | {ok}/{n} |" for t, (ok, n) in sorted(attempts.items())]
    (Path(root) / "README.md").write_text("\n".join(lines) + "\n")
