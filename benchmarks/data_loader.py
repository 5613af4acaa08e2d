"""Training-data loader throughput: samples/s of `vla.data.build_dataloader` alone, vs lerobot's own loader.

    HF_HUB_OFFLINE=1 PYTHONPATH=. python benchmarks/data_loader.py \
        --root outputs/data_bench/demos/dataset --workers 0 1 2 --batch 32 --batches 20 \
        --step-s 0.43 --out outputs/data_bench/loader.json

For each worker count, three loaders over the same dataset with chunk_len 8 and the same video backend:
  ours                 vla.data.open_chunk_dataset + build_dataloader (valid starts only, uint8 HWC images,
                       resumable), samples assembled by vla.data.frames.FrameReader (the default)
  ours_lerobot_reader  the same, samples from LeRobotDataset.__getitem__ (reader="lerobot")
  lerobot              LeRobotDataset(delta_timestamps=action chunk) in a torch DataLoader(shuffle=True) with
                       the default collate (float CHW images): the anchor
Each loader delivers `--warmup` batches first (worker start-up, reported as time to first batch), then
`--batches` timed batches: samples/s of the loader alone (the consumer does nothing).
With `--step-s S`, ours is run again while the consumer burns S seconds of CPU per batch (a matmul loop on the
trainer's threads, like a training step on a CPU machine) and the share of wall time spent waiting for the
next batch is reported: the loader's cost inside a training loop where both compete for the cores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch


def _ours(root: str, workers: int, batch: int, seed: int, reader: str = "fast"):
    from vla.data import build_dataloader, open_chunk_dataset

    ds = open_chunk_dataset(root=root, chunk_len=8, reader=reader)
    return build_dataloader(ds, batch_size=batch, num_workers=workers, seed=seed), ds.num_samples


def _ours_lerobot_reader(root: str, workers: int, batch: int, seed: int):
    return _ours(root, workers, batch, seed, reader="lerobot")


def _lerobot(root: str, workers: int, batch: int, seed: int):
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    from vla.data.video import video_backend

    fps = json.loads((Path(root) / "meta" / "info.json").read_text())["fps"]
    ds = LeRobotDataset(
        "local/bench",
        root=root,
        delta_timestamps={"action": [i / fps for i in range(8)]},
        video_backend=video_backend(),
    )
    g = torch.Generator().manual_seed(seed)
    loader = torch.utils.data.DataLoader(
        ds, batch_size=batch, shuffle=True, num_workers=workers, drop_last=True, generator=g
    )
    return loader, len(ds)


def _cycle(loader):
    while True:
        yield from loader


def busy(seconds: float) -> None:
    """Burn CPU on the trainer's threads for about `seconds`."""
    a = torch.randn(256, 256)
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        a = torch.tanh(a @ a * 1e-2)


def measure(make, root, workers, batch, batches, warmup, seed, step_s=0.0) -> dict:
    t0 = time.perf_counter()
    loader, n = make(root, workers, batch, seed)
    it = _cycle(loader) if make is _lerobot else iter(loader)
    next(it)
    first = time.perf_counter() - t0
    for _ in range(warmup - 1):
        next(it)
    wait = 0.0
    start = time.perf_counter()
    for _ in range(batches):
        w = time.perf_counter()
        b = next(it)
        wait += time.perf_counter() - w
        if step_s:
            busy(step_s)
    total = time.perf_counter() - start
    row = {
        "workers": workers,
        "samples": n,
        "first_batch_s": round(first, 2),
        "samples_per_s": round(batches * batch / total, 1),
        "ms_per_batch": round(1000 * total / batches, 1),
        "image_dtype": str(b["observation.images.image"].dtype),
    }
    if step_s:
        row |= {
            "step_s": step_s,
            "wait_share": round(wait / total, 3),
            "wait_ms_per_step": round(1000 * wait / batches, 1),
        }
    del it, loader
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--root", required=True, help="a LeRobot dataset directory (e.g. from pion-gen-demos)")
    p.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--batches", type=int, default=20)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--step-s", type=float, default=0.0, help="simulated CPU step per batch (0: skip)")
    p.add_argument("--skip-anchor", action="store_true")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()
    from lerobot.datasets.lerobot_dataset import LeRobotDataset  # noqa: F401  (imports out of the timings)

    from vla.data.video import video_backend

    rows = []
    for w in args.workers:
        variants = [("ours", _ours), ("ours_lerobot_reader", _ours_lerobot_reader)]
        variants += [] if args.skip_anchor else [("lerobot", _lerobot)]
        for name, make in variants:
            row = {"loader": name} | measure(
                make, args.root, w, args.batch, args.batches, args.warmup, args.seed
            )
            print(json.dumps(row), flush=True)
            rows.append(row)
        if args.step_s:
            row = {"loader": "ours+step"} | measure(
                _ours, args.root, w, args.batch, args.batches, args.warmup, args.seed, args.step_s
            )
            print(json.dumps(row), flush=True)
            rows.append(row)
    result = {
        "root": args.root,
        "batch": args.batch,
        "batches": args.batches,
        "video_backend": video_backend(),
        "torch_threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
        "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
        "rows": rows,
    }
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
