"""15 Hz loop pacing: period error of the deadline-based clock, bare and inside the full robot loop.

- bare: `RateClock(15).wait()` in a tight loop;
- loop: `RobotRunner` with the fake arm, two simulated 320x180 cameras (preprocessed every tick), and a
  loopback policy server (hold-still policy, 16x8 chunks, re-query every 8 steps).
Period error = (time between consecutive wake-ups) - 1/15 s; drift = wake-up time vs the ideal grid.

Usage: python benchmarks/deploy_loop_pacing.py [--seconds 20] [--md out.md]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from deploy.backends.fake import FakeBackend  # noqa: E402
from deploy.cameras import SimCamera  # noqa: E402
from deploy.client import PolicyClient  # noqa: E402
from deploy.droid import EXTERIOR_IMAGE, WRIST_IMAGE  # noqa: E402
from deploy.pacing import RateClock  # noqa: E402
from deploy.policies import DroidHoldStillPolicy as HoldStillPolicy  # noqa: E402
from deploy.runner import LoopConfig, RobotRunner  # noqa: E402
from deploy.safety import SafetyConfig  # noqa: E402
from deploy.server import PolicyServer  # noqa: E402


def bare(ticks: int) -> np.ndarray:
    clock = RateClock(15.0)
    stamps = []
    for _ in range(ticks):
        clock.wait()
        stamps.append(time.perf_counter())
    return np.diff(stamps) - 1 / 15


def full_loop(ticks: int) -> tuple[np.ndarray, int]:
    with PolicyServer(HoldStillPolicy(), "tcp://127.0.0.1:*") as server:
        cams = {EXTERIOR_IMAGE: SimCamera("ext", 180, 320, 4), WRIST_IMAGE: SimCamera("wrist", 180, 320, 4)}
        with PolicyClient(server.endpoint, timeout_s=1.0, retries=1) as client:
            runner = RobotRunner(
                FakeBackend(), client, cams, SafetyConfig(), LoopConfig(max_steps=ticks, dry_run=False)
            )
            res = runner.run_episode("hold still")
    # wake-ups are `lateness` after deadlines exactly one period apart: period error = lateness difference
    return np.diff(np.asarray(res.lateness_s)), res.queries


def stats(err: np.ndarray) -> str:
    a = np.abs(err) * 1000
    return f"{np.percentile(a, 50):.3f} | {np.percentile(a, 99):.3f} | {a.max():.3f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--md", default=None)
    args = ap.parse_args()
    ticks = int(args.seconds * 15)
    b = bare(ticks)
    f, queries = full_loop(ticks)
    drift_ms = float(np.sum(f)) * 1000  # = last lateness - first lateness
    table = "\n".join(
        [
            "| 15 Hz loop | ticks | abs period error p50 ms | p99 ms | max ms |",
            "|---|---|---|---|---|",
            f"| bare RateClock | {len(b)} | {stats(b)} |",
            f"| full robot loop (fake arm, 2 cameras, {queries} policy queries) | {len(f)} | {stats(f)} |",
        ]
    )
    load = os.getloadavg()
    print(table)
    print(f"full loop cumulative drift over {len(f)} periods: {drift_ms:.3f} ms; load {load}")
    if args.md:
        with open(args.md, "a") as fh:
            fh.write(
                table + f"\n\nCumulative drift of the full loop over {len(f)} periods: {drift_ms:.3f} ms. "
                f"Load average at the end: {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}\n\n"
            )


if __name__ == "__main__":
    main()
