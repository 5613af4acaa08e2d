"""Stage (d) of scripts/droid_sim_demo.sh: success, safety interventions and loop timing -> a markdown report.

    python -m envs.droid_sim.report <run dir> [--md docs/droid_sim_report.md]

Reads `<run>/eval/<i>/` (the recordings of the trained policy's trials, one per instruction), the pion-robot
logs `<run>/logs/eval_<i>.log` (episode status and loop lateness), `<run>/timings.json` (wall time per stage,
written by the script) and `<run>/run.json` (command, commit, machine). Success: the last recorded joint
configuration is within `task.TOLERANCE_RAD` of the instructed target on every joint. Writes
`<run>/summary.json` and the markdown report.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np

from envs.droid_sim.episodes import Episode, read_episodes
from envs.droid_sim.task import INSTRUCTIONS, TOLERANCE_RAD, joint_error
from vla.stats import wilson_interval

_EPISODE_LINE = re.compile(
    r"episode (\d+): (\w+) after (\d+) steps, (\d+) queries, .*lateness p99 ([\d.]+) ms"
)


def parse_robot_log(path: Path) -> list[dict]:
    """The per-episode lines pion-robot logs: status, steps, queries, p99 lateness (ms)."""
    if not path.is_file():
        return []
    rows = []
    for m in _EPISODE_LINE.finditer(path.read_text(errors="replace")):
        rows.append({"episode": int(m[1]), "status": m[2], "steps": int(m[3]), "queries": int(m[4]),
                     "lateness_p99_ms": float(m[5])})  # fmt: skip
    return rows


def run_facts(run: Path) -> dict:
    """Dataset size and the training result, from what the earlier stages left in the run directory."""
    facts: dict = {}
    info = run / "dataset" / "meta" / "info.json"
    if info.is_file():
        meta = json.loads(info.read_text())
        facts["dataset"] = {"episodes": meta.get("total_episodes"), "frames": meta.get("total_frames")}
    log = run / "logs" / "train.log"
    if log.is_file():
        done = re.findall(r"\[pion-train\] done: (\d+) steps, last loss ([\d.eE+-]+|None)", log.read_text())
        if done:
            loss = done[-1][1]
            facts["train"] = {
                "steps": int(done[-1][0]),
                "last_loss": loss if loss == "None" else f"{float(loss):.3f}",
            }
    return facts


def _pct(x: np.ndarray, q: float) -> float | None:
    return float(np.percentile(x, q)) if len(x) else None


def summarize(run: Path, tolerance: float = TOLERANCE_RAD) -> dict:
    per_task, episodes, logs = {}, [], []
    for i in range(len(INSTRUCTIONS)):
        root = run / "eval" / str(i)
        if root.is_dir():
            episodes += read_episodes(root)
        logs += parse_robot_log(run / "logs" / f"eval_{i}.log")
    if not episodes:
        raise FileNotFoundError(f"no evaluation recordings under {run / 'eval'}")
    for task in INSTRUCTIONS:
        eps: list[Episode] = [e for e in episodes if e.task == task]
        errors = [joint_error(e.final_q, task) for e in eps]
        wins = sum(err <= tolerance for err in errors)
        per_task[task] = {
            "trials": len(eps),
            "successes": wins,
            "final_error_rad": [round(x, 4) for x in errors],
        }
    n = sum(t["trials"] for t in per_task.values())
    k = sum(t["successes"] for t in per_task.values())
    lo, hi = wilson_interval(k, n)
    flags: dict[str, int] = {}
    for e in episodes:
        for name, count in e.flags.items():
            flags[name] = flags.get(name, 0) + count
    steps = sum(e.steps for e in episodes)
    rtt = np.concatenate([e.rtt_ms for e in episodes])
    infer = np.concatenate([e.infer_ms for e in episodes])
    late = np.array([row["lateness_p99_ms"] for row in logs if row["steps"] > 0])  # episodes that ran
    return {
        "tolerance_rad": tolerance,
        "trials": n,
        "successes": k,
        "success_rate": k / n if n else 0.0,
        "wilson95": [lo, hi],
        "per_instruction": per_task,
        "steps": steps,
        "flag_steps": flags,
        "episodes_with_flags": sum(1 for e in episodes if any(e.flags.values())),
        "rtt_ms": {"median": _pct(rtt, 50), "p99": _pct(rtt, 99), "max": _pct(rtt, 100)},
        "infer_ms": {"median": _pct(infer, 50), "p99": _pct(infer, 99)},
        "episode_lateness_p99_ms": {"median": _pct(late, 50), "max": _pct(late, 100)},
        "episode_status": sorted({row["status"] for row in logs}),
        **run_facts(run),
    }


def _fmt(x: float | None, digits: int = 1) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def render(summary: dict, run_info: dict, timings: dict) -> str:
    s = summary
    lo, hi = s["wilson95"]
    data, train = s.get("dataset", {}), s.get("train", {})
    lines = [
        "# DROID end to end in franky-sim: record → train → serve → run",
        "",
        "`scripts/droid_sim_demo.sh`: (a) `pion-robot` drives franky-sim (simulated FR3, MuJoCo) with the scripted "
        'instruction-following controller `envs.droid_sim.task:ScriptedReachPolicy` ("move to the left target" / '
        '"move to the right target": joint-space targets ±0.6 rad on the base joint from the DROID reset pose) and '
        f"records {data.get('episodes', '?')} episodes ({data.get('frames', '?')} frames at 15 Hz) to a DROID-format "
        "dataset; (b) `pion-train +experiment=droid_sim_train` trains the CPU-scale DROID flow-matching policy "
        f"({train.get('steps', '?')} steps, last loss {train.get('last_loss', '?')}); (c) `pion-serve` serves the "
        "checkpoint (it declares `droid_joint_velocity`) and `pion-robot` runs it in franky-sim with the safety filter "
        "on (`--arm`); (d) this report. Cameras are `SimCamera` patterns (no task information): the policy must "
        "follow the instruction from language and proprioception.",
        "",
        f"**Success: {s['successes']}/{s['trials']} = {100 * s['success_rate']:.0f}% "
        f"(95% Wilson CI {100 * lo:.0f}–{100 * hi:.0f}%)**; target ≥ 80%. Success = the last joint configuration "
        f"of the episode is within {s['tolerance_rad']} rad of the instructed target on every joint.",
        "",
        "| instruction | trials | successes | final max-joint error (rad) |",
        "|---|---|---|---|",
    ]
    for task, t in s["per_instruction"].items():
        errs = ", ".join(f"{x:.3f}" for x in t["final_error_rad"])
        lines.append(f"| {task} | {t['trials']} | {t['successes']} | {errs} |")
    flag_text = ", ".join(f"{k} {v}" for k, v in s["flag_steps"].items()) or "none"
    lines += [
        "",
        "## Safety filter and loop timing (trained policy, served by pion-serve)",
        "",
        f"- steps: {s['steps']}; safety-filter flags (steps raised): {flag_text}",
        f"- episodes with any flag: {s['episodes_with_flags']} of {s['trials']}; "
        f"pion-robot episode status: {', '.join(s['episode_status']) or 'n/a'}",
        f"- request round trip (robot side, per step): median {_fmt(s['rtt_ms']['median'])} ms, "
        f"p99 {_fmt(s['rtt_ms']['p99'])} ms, max {_fmt(s['rtt_ms']['max'])} ms; server inference median "
        f"{_fmt(s['infer_ms']['median'])} ms",
        f"- 15 Hz loop lateness, per-episode p99: median {_fmt(s['episode_lateness_p99_ms']['median'])} ms, "
        f"worst {_fmt(s['episode_lateness_p99_ms']['max'])} ms (the loop waits for each chunk: open loop 8 of 16)",
        "",
        "## Run",
        "",
        f"- command: `{run_info.get('command', '?')}`",
        f"- commit: {run_info.get('commit', '?')}; machine: {run_info.get('machine', '?')}; "
        f"date: {run_info.get('date', '?')}",
        "- wall time per stage: " + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items()),
    ]
    for key in ("record", "train"):
        if key in run_info:
            lines.append(f"- {key}: {run_info[key]}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Report of a scripts/droid_sim_demo.sh run.")
    ap.add_argument("run", type=Path, help="the run directory the script wrote")
    ap.add_argument("--md", type=Path, default=None, help="markdown path (default <run>/report.md)")
    ap.add_argument("--tolerance", type=float, default=TOLERANCE_RAD)
    args = ap.parse_args(argv)
    try:
        summary = summarize(args.run, args.tolerance)
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    load = lambda name: json.loads((args.run / name).read_text()) if (args.run / name).is_file() else {}  # noqa: E731
    (args.run / "summary.json").write_text(json.dumps(summary, indent=1))
    md = args.md or args.run / "report.md"
    md.write_text(render(summary, load("run.json"), load("timings.json")))
    print(f"[droid-sim] {summary['successes']}/{summary['trials']} successes; report {md}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
