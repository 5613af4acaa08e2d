"""Pause-free execution in franky-sim: command gaps and joint-velocity jumps at chunk boundaries, with 150 ms of
inference latency injected, for the synchronous loop, overlapping chunks, and overlapping chunks with real-time
chunking (RTC).

The policy is a tiny flow-matching model (`FlowMatchingPolicy`, 32-px towers, 2-layer LLM, 5-block DiT of width 32)
trained here for a few hundred steps on synthetic DROID chunks: seven joint velocities A·sin(2π(i + φ)/32 + 0.7·j)
with a random phase φ per chunk (gripper 0). Its observation is fixed, so each query samples a smooth chunk of a
random phase: without RTC consecutive chunks disagree at their seam, which is what RTC is for.
`deploy.delayed.DelayedPolicy` pads every query to 150 ms. Each configuration runs `--steps` ticks at 15 Hz on
franky-sim (MuJoCo) through `FrankyBackend`, safety filter on.

Measured per run: the longest time between two consecutive velocity commands; |Δv| between consecutive commanded
joint velocities (rad/s, after the safety filter) where the executed chunk changes ("boundary") and inside a chunk
("within"), max over joints; the same for the joint velocity franky-sim reports at each tick.

Usage: python benchmarks/deploy_async_chunks.py [--steps 150] [--latency 0.15] [--md out.md]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from deploy.backends.franky_backend import FrankyBackend  # noqa: E402
from deploy.cameras import SimCamera  # noqa: E402
from deploy.delayed import DelayedPolicy  # noqa: E402
from deploy.droid import EXTERIOR_IMAGE, RESET_JOINTS, WRIST_IMAGE, droid_spec  # noqa: E402
from deploy.runner import LoopConfig, RobotRunner  # noqa: E402
from deploy.safety import SafetyConfig  # noqa: E402
from vla.models.backbone import BackboneConfig  # noqa: E402
from vla.models.flow_matching import FlowMatchingConfig, FlowMatchingPolicy  # noqa: E402
from vla.models.flow_matching.rtc import prefix_from_batch  # noqa: E402
from vla.protocol import validate_batch  # noqa: E402

T, A, AMPLITUDE, WAVE_PERIOD = 16, 8, 0.15, 32


def wave_chunks(n: int, g: torch.Generator) -> torch.Tensor:
    """(n, T, 8) smooth joint-velocity chunks of random phase; gripper 0 (open)."""
    phase = torch.rand(n, 1, 1, generator=g) * WAVE_PERIOD
    i = torch.arange(T).view(1, T, 1)
    joints = torch.arange(7).view(1, 1, 7) * 0.7
    vel = AMPLITUDE * torch.sin(2 * np.pi * (i + phase) / WAVE_PERIOD + joints)
    return torch.cat([vel, torch.zeros(n, T, 1)], dim=-1)


class TinyFlowDroidPolicy:
    """A tiny FlowMatchingPolicy behind the DROID protocol, fixed observation, actions = model outputs (no
    normalisation); the pending actions of a request reach `sample_actions(prefix=)` as through TorchPolicy."""

    def __init__(self, steps: int = 400, hidden: int = 32, seed: int = 0):
        torch.manual_seed(seed)
        backbone = BackboneConfig.cpu(
            image_size=32, patch_size=16, dino_hidden=32, dino_layers=2, dino_heads=2, siglip_hidden=32,
            siglip_layers=2, siglip_heads=2, siglip_mlp=64, llm_hidden=32, llm_layers=2, llm_heads=4,
            llm_kv_heads=2, llm_mlp=64,
        )  # fmt: skip
        cfg = FlowMatchingConfig(
            backbone=backbone, expert_hidden=hidden, expert_heads=4, max_positions=16, num_queries=4,
            chunk_len=T, n_action_steps=8, action_dim=A, dct_loss_weight=0.0,
        )  # fmt: skip
        self.model = FlowMatchingPolicy(cfg)
        self.spec = droid_spec("tiny-flow-wave", T, 8)
        self.inputs = {
            "pixel_values": torch.zeros(1, 2, 6, 32, 32),
            "input_ids": torch.tensor([[5, 6, 7] + [1] * 4]),
            "attention_mask": torch.ones(1, 7, dtype=torch.long),
            "proprio": torch.zeros(1, 8),
        }
        self.train_loss = self._fit(steps, seed)
        self.model.eval()

    def _fit(self, steps: int, seed: int) -> tuple[float, float]:
        g = torch.Generator().manual_seed(seed)
        opt = torch.optim.AdamW(self.model.parameters(), lr=3e-3)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
        batch = {k: v.repeat(64, *([1] * (v.ndim - 1))) for k, v in self.inputs.items()}
        losses = []
        for _ in range(steps):
            loss, m = self.model.compute_loss({**batch, "action": wave_chunks(64, g)}, generator=g)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            losses.append(m["flow_mse"])
        return float(np.mean(losses[:10])), float(np.mean(losses[-20:]))

    def reset(self) -> None:
        pass

    @torch.no_grad()
    def predict_chunk(self, batch) -> np.ndarray:
        validate_batch(self.spec, batch)
        prefix = prefix_from_batch(batch, lambda a: a)
        out = self.model.sample_actions(self.inputs, prefix=prefix)
        return out.numpy().astype(np.float32)


def _probe_batch(policy: TinyFlowDroidPolicy) -> dict:
    from vla.protocol import STATE_KEY, TASK_KEY

    images = {k: np.zeros((1, *shape), np.uint8) for k, shape in policy.spec.image_shapes.items()}
    return {**images, STATE_KEY: np.zeros((1, 8), np.float32), TASK_KEY: ["wave"]}


def start_sim() -> tuple[subprocess.Popen, str]:
    host = f"127.{random.randint(100, 250)}.{os.getpid() % 250}.{random.randint(1, 250)}"
    exe = Path(sys.executable).with_name("franky-sim")
    cmd = [str(exe) if exe.exists() else (shutil.which("franky-sim") or "franky-sim"), "-s", "mujoco"]
    proc = subprocess.Popen(
        [*cmd, "--hostname", host], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip
    ready = threading.Event()
    threading.Thread(
        target=lambda: [ready.set() for line in proc.stdout if "Connect to the server" in line], daemon=True
    ).start()
    if not ready.wait(60):
        os.killpg(proc.pid, signal.SIGKILL)
        raise RuntimeError("franky-sim did not start")
    return proc, host


def jumps(values: np.ndarray, boundary: np.ndarray) -> str:
    """|Δ| between consecutive steps (max over joints): "mean / max" at chunk boundaries | inside chunks."""
    d = np.abs(np.diff(values, axis=0)).max(axis=1)
    at, within = d[boundary], d[~boundary]
    return f"{at.mean():.3f} / {at.max():.3f} | {within.mean():.3f} / {within.max():.3f}"


def roughness(chunks: np.ndarray) -> float:
    """Mean over steps of max over joints |Δ| between consecutive actions of the same chunk (normalised units)."""
    return float(np.abs(np.diff(chunks[..., :7], axis=1)).max(axis=-1).mean())


def run(arm, policy, steps: int, **loop) -> dict:
    records = []
    cams = {EXTERIOR_IMAGE: SimCamera("ext", 180, 320, 4), WRIST_IMAGE: SimCamera("wrist", 180, 320, 3)}
    cfg = LoopConfig(max_steps=steps, dry_run=False, **loop)
    runner = RobotRunner(arm, policy, cams, SafetyConfig(), cfg, on_step=lambda r, p: records.append(r))
    arm.move_to(RESET_JOINTS, 20.0)
    res = runner.run_episode("wave")
    t = np.array([r.t for r in records])
    gaps = np.diff(t)
    ids = np.array([r.request_id for r in records])
    boundary = ids[1:] != ids[:-1]
    cmd = np.array([r.command.velocity for r in records])
    dq = np.array([r.state.dq for r in records])
    return {
        "status": res.status,
        "queries": res.queries,
        "blocking": res.blocking_queries,
        "gap_ms": 1000 * res.max_command_gap_s,
        "gap_p99_ms": 1000 * float(np.percentile(gaps, 99)),
        "missed": int((gaps > 1.5 / SafetyConfig().control_hz).sum()),
        "cmd": jumps(cmd, boundary),
        "dq": jumps(dq, boundary),
        "raw": jumps(np.array([r.action[:7] for r in records]), boundary),
        "boundaries": int(boundary.sum()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--latency", type=float, default=0.15)
    ap.add_argument("--train-steps", type=int, default=1500)
    ap.add_argument("--expert-hidden", type=int, default=64)
    ap.add_argument("--md", default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)  # the simulator needs the other core
    t0 = time.perf_counter()
    tiny = TinyFlowDroidPolicy(args.train_steps, args.expert_hidden)
    samples = np.concatenate([tiny.predict_chunk(_probe_batch(tiny)) for _ in range(20)])
    print(
        f"tiny flow policy trained in {time.perf_counter() - t0:.1f} s, flow MSE first/last {tiny.train_loss}; "
        f"within-chunk roughness: samples {roughness(samples):.4f}, "
        f"data {roughness(wave_chunks(20, torch.Generator().manual_seed(9)).numpy()):.4f}"
    )
    policy = DelayedPolicy(tiny, args.latency)
    configs = {
        "synchronous (8 of 16, today)": {},
        "overlapping, threshold 0.5, replace": {"chunk_threshold": 0.5},
        "overlapping, threshold 0.5, weighted_average": {
            "chunk_threshold": 0.5,
            "aggregate": "weighted_average",
        },
        "overlapping, threshold 0.5, replace + RTC": {"chunk_threshold": 0.5, "rtc": True},
    }
    proc, host = start_sim()
    rows = []
    try:
        arm = FrankyBackend(host, realtime=False, dynamics_factor=SafetyConfig().dynamics_factor)
        try:
            for name, loop in configs.items():
                policy.latencies_s.clear()
                r = run(arm, policy, args.steps, **loop)
                lat = 1000 * float(np.median(policy.latencies_s))
                rows.append(
                    f"| {name} | {r['status']} | {r['queries']} ({r['blocking']}) | {lat:.0f} | {r['gap_p99_ms']:.0f} / {r['gap_ms']:.0f} | {r['missed']} | "
                    f"{r['boundaries']} | {r['raw']} | {r['cmd']} | {r['dq']} |"
                )
                print(rows[-1], flush=True)
        finally:
            arm.close()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)
    table = "\n".join(
        [
            "| loop | status | queries (waited for) | latency p50 ms | time between commands p99 / max ms | "
            "gaps > 1.5 periods | "
            "chunk boundaries | policy action: boundary mean / max | within mean / max | "
            "commanded rad/s: boundary | within | franky-sim dq rad/s: boundary | within |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
            *rows,
        ]
    )
    print(table)
    print(
        f"load {os.getloadavg()}, {args.steps} ticks per run, injected latency {args.latency * 1000:.0f} ms"
    )
    if args.md:
        Path(args.md).write_text(table + "\n")


if __name__ == "__main__":
    main()
