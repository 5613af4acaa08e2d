"""Round-trip latency of a DROID-size policy request on loopback: our protocol vs raw pyzmq REQ/REP
vs openpi's websocket transport, in one run.

Request: two 224x224x3 uint8 images, 8 float32 state, a prompt; reply: a (T, 8) float32 chunk, T = 8 and 50.
Every server runs in its own process, with a policy that returns a constant chunk (transport cost only).
- ours:   deploy.server.PolicyServer (ROUTER, schema, validation, timing) + deploy.client.PolicyClient
- raw:    a bare REP socket + REQ, same msgpack ndarray codec, no schema/validation/timing
- openpi: a websockets server written the way openpi's serving loop works (metadata frame, msgpack-numpy,
          server_timing) + openpi_client.WebsocketClientPolicy, run in a separate venv (numpy < 2)

Usage: python benchmarks/deploy_latency.py [--n 2000] [--openpi-python /tmp/openpi-venv/bin/python] [--md out.md]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

OPENPI_SERVER = textwrap.dedent("""
    import asyncio, sys, time
    import numpy as np, websockets.asyncio.server as wss
    from openpi_client import msgpack_numpy
    port, T = int(sys.argv[1]), int(sys.argv[2])
    chunk = np.zeros((T, 8), np.float32)
    async def handler(ws):
        packer = msgpack_numpy.Packer()
        await ws.send(packer.pack({}))
        prev_total = None
        while True:
            t0 = time.monotonic()
            try:
                obs = msgpack_numpy.unpackb(await ws.recv())
            except Exception:
                return
            t1 = time.monotonic()
            out = {"actions": chunk, "server_timing": {"infer_ms": (time.monotonic() - t1) * 1000}}
            if prev_total is not None:
                out["server_timing"]["prev_total_ms"] = prev_total * 1000
            await ws.send(packer.pack(out))
            prev_total = time.monotonic() - t0
    async def main():
        async with wss.serve(handler, "127.0.0.1", port, compression=None, max_size=None):
            print("ready", flush=True)
            await asyncio.Future()
    asyncio.run(main())
""")

OPENPI_CLIENT = textwrap.dedent("""
    import json, sys, time
    import numpy as np
    from openpi_client.websocket_client_policy import WebsocketClientPolicy
    port, n, warm = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    rng = np.random.default_rng(0)
    obs = {"observation/exterior_image_1_left": rng.integers(0, 256, (224, 224, 3), dtype=np.uint8),
           "observation/wrist_image_left": rng.integers(0, 256, (224, 224, 3), dtype=np.uint8),
           "observation/joint_position": rng.normal(size=7), "observation/gripper_position": np.zeros(1),
           "prompt": "put the marker in the cup"}
    for _ in range(50):
        try:
            policy = WebsocketClientPolicy("127.0.0.1", port); break
        except OSError:
            time.sleep(0.1)
    lat = []
    for i in range(warm + n):
        t0 = time.perf_counter(); out = policy.infer(obs); dt = time.perf_counter() - t0
        if i >= warm: lat.append(dt * 1000)
    assert out["actions"].shape[1] == 8
    print(json.dumps(lat))
""")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ConstantChunkPolicy:
    """Validates the batch like a real policy, returns zeros: measures transport, not inference."""

    def __init__(self, chunk_len: int):
        from deploy.droid import droid_spec

        self.spec = droid_spec("constant-chunk", chunk_len, min(8, chunk_len))
        self._chunk = np.zeros((1, chunk_len, 8), np.float32)

    def reset(self) -> None:
        pass

    def predict_chunk(self, batch):
        from vla.protocol import validate_batch

        b = validate_batch(self.spec, batch)
        return np.repeat(self._chunk, b, 0)


def serve_ours(port: int, chunk_len: int) -> None:
    from deploy.server import PolicyServer

    server = PolicyServer(ConstantChunkPolicy(chunk_len), f"tcp://127.0.0.1:{port}")
    print("ready", flush=True)
    server.serve_forever()


def serve_raw(port: int, chunk_len: int) -> None:
    import zmq

    from deploy import codec

    sock = zmq.Context().socket(zmq.REP)
    sock.bind(f"tcp://127.0.0.1:{port}")
    reply = codec.encode({"actions": np.zeros((chunk_len, 8), np.float32)})
    print("ready", flush=True)
    while True:
        codec.decode(sock.recv(), 1 << 26)
        sock.send(reply)


def _batch() -> dict:
    from deploy.droid import EXTERIOR_IMAGE, WRIST_IMAGE
    from vla.protocol import STATE_KEY, TASK_KEY

    rng = np.random.default_rng(0)
    return {
        EXTERIOR_IMAGE: rng.integers(0, 256, (1, 224, 224, 3), dtype=np.uint8),
        WRIST_IMAGE: rng.integers(0, 256, (1, 224, 224, 3), dtype=np.uint8),
        STATE_KEY: rng.normal(size=(1, 8)).astype(np.float32),
        TASK_KEY: ["put the marker in the cup"],
    }


def client_ours(port: int, n: int, warm: int) -> list[float]:
    from deploy.client import PolicyClient

    batch = _batch()
    lat = []
    with PolicyClient(f"tcp://127.0.0.1:{port}", timeout_s=5, retries=1) as c:
        c.hello()
        for i in range(warm + n):
            t0 = time.perf_counter()
            c.infer(batch)
            if i >= warm:
                lat.append((time.perf_counter() - t0) * 1000)
    return lat


def client_raw(port: int, n: int, warm: int) -> list[float]:
    import zmq

    from deploy import codec

    batch = _batch()
    sock = zmq.Context().socket(zmq.REQ)
    sock.connect(f"tcp://127.0.0.1:{port}")
    lat = []
    for i in range(warm + n):
        t0 = time.perf_counter()
        sock.send(codec.encode(batch))
        codec.decode(sock.recv(), 1 << 26)
        if i >= warm:
            lat.append((time.perf_counter() - t0) * 1000)
    sock.close(linger=0)
    return lat


def _start(cmd: list[str]) -> subprocess.Popen:
    p = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    line = p.stdout.readline()
    if "ready" not in line:
        p.kill()
        raise RuntimeError(f"server {cmd} failed: {line}{p.stdout.read()}")
    return p


def measure(kind: str, chunk_len: int, n: int, warm: int, openpi_python: str | None) -> list[float] | None:
    port = _free_port()
    if kind == "openpi":
        if not openpi_python or not Path(openpi_python).exists():
            return None
        server = _start([openpi_python, "-c", OPENPI_SERVER, str(port), str(chunk_len)])
        try:
            out = subprocess.run(
                [openpi_python, "-c", OPENPI_CLIENT, str(port), str(n), str(warm)],
                capture_output=True,
                text=True,
                timeout=600,
            )
            if out.returncode != 0:
                raise RuntimeError(out.stderr)
            return json.loads(out.stdout.strip().splitlines()[-1])
        finally:
            server.kill()
            server.wait()
    server = _start(
        [sys.executable, __file__, "--serve", kind, "--port", str(port), "--chunk", str(chunk_len)]
    )
    try:
        return (client_ours if kind == "ours" else client_raw)(port, n, warm)
    finally:
        server.kill()
        server.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--openpi-python", default="/tmp/openpi-venv/bin/python")
    ap.add_argument("--md", default=None, help="append a markdown table to this file")
    ap.add_argument("--serve", choices=["ours", "raw"], help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--chunk", type=int, default=8, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        (serve_ours if args.serve == "ours" else serve_raw)(args.port, args.chunk)
        return
    rows = []
    for chunk_len in (8, 50):
        res = {
            k: measure(k, chunk_len, args.n, args.warmup, args.openpi_python)
            for k in ("raw", "ours", "openpi")
        }
        p = {k: (np.percentile(v, 50), np.percentile(v, 99)) if v else None for k, v in res.items()}
        for k, v in p.items():
            if v is None:
                print(f"T={chunk_len} {k}: not measured (openpi venv missing)")
                continue
            print(f"T={chunk_len} {k:6s} p50 {v[0]:.3f} ms  p99 {v[1]:.3f} ms")
        rows.append((chunk_len, p))
    load = os.getloadavg()
    lines = [
        "| chunk | transport | p50 ms | p99 ms | ours / raw (p50, p99) | ours / openpi (p50, p99) |",
        "|---|---|---|---|---|---|",
    ]
    for chunk_len, p in rows:
        for k in ("raw", "ours", "openpi"):
            if p[k] is None:
                lines.append(f"| {chunk_len}x8 | {k} | n/a | n/a | | |")
                continue
            r1 = r2 = ""
            if k == "ours":
                r1 = f"{p['ours'][0] / p['raw'][0]:.2f}, {p['ours'][1] / p['raw'][1]:.2f}"
                if p["openpi"]:
                    r2 = f"{p['ours'][0] / p['openpi'][0]:.2f}, {p['ours'][1] / p['openpi'][1]:.2f}"
            lines.append(f"| {chunk_len}x8 | {k} | {p[k][0]:.3f} | {p[k][1]:.3f} | {r1} | {r2} |")
    table = "\n".join(lines)
    print(table)
    print(
        f"load average during run: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; python {platform.python_version()}"
    )
    if args.md:
        with open(args.md, "a") as f:
            f.write(table + f"\n\nload average at the end: {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}\n\n")


if __name__ == "__main__":
    main()
