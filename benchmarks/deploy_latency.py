"""Round-trip latency of a DROID-size policy request on loopback: our protocol vs raw pyzmq REQ/REP vs
openpi's websocket transport, interleaved request by request; then a robot client's latency while
another client floods the server.

Request: two 224x224x3 uint8 images, 8 float32 state, a prompt; reply: a (T, 8) float32 chunk, T = 8 and 50.
Every server runs in its own process with a policy that returns a constant chunk (transport cost only),
and every client in its own worker process. A driver sends "go" to the workers in a fresh random order
each round, so load drifts on a shared machine hit every transport alike; each worker times its own
round trip (the go/result pipe is outside the timed region).
- ours:   deploy.server.PolicyServer (ROUTER, schema, validation, fair queues, timing) + deploy.client.PolicyClient
- raw:    a bare REP socket + REQ, same msgpack ndarray codec, no schema/validation/timing
- openpi: a websockets server written the way openpi's serving loop works (metadata frame, msgpack-numpy,
          server_timing) + openpi_client.WebsocketClientPolicy, run in a separate venv (numpy < 2)
Flooded neighbour: a robot client (one request at a time, 20 ms apart) against our server, idle and while
another process keeps 16 valid ~7.9 MB requests (26 batch rows) in flight on 2 sockets.

Usage: python benchmarks/deploy_latency.py [--n 3000] [--openpi-python /tmp/openpi-venv/bin/python] [--md out.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
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

# A worker: connect, then per "go" line do one timed round trip and print the ms.
OPENPI_WORKER = textwrap.dedent("""
    import sys, time
    import numpy as np
    from openpi_client.websocket_client_policy import WebsocketClientPolicy
    port = int(sys.argv[1])
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
    print("ready", flush=True)
    for line in sys.stdin:
        t0 = time.perf_counter(); out = policy.infer(obs); dt = time.perf_counter() - t0
        assert out["actions"].shape[1] == 8
        print(f"{dt * 1000:.6f}", flush=True)
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


def _batch(rows: int = 1) -> dict:
    from deploy.droid import EXTERIOR_IMAGE, WRIST_IMAGE
    from vla.protocol import STATE_KEY, TASK_KEY

    rng = np.random.default_rng(0)
    return {
        EXTERIOR_IMAGE: rng.integers(0, 256, (rows, 224, 224, 3), dtype=np.uint8),
        WRIST_IMAGE: rng.integers(0, 256, (rows, 224, 224, 3), dtype=np.uint8),
        STATE_KEY: rng.normal(size=(rows, 8)).astype(np.float32),
        TASK_KEY: ["put the marker in the cup"] * rows,
    }


def worker(kind: str, port: int) -> None:
    """Our or the raw client: one timed round trip per "go" line on stdin."""
    batch = _batch()
    if kind == "ours":
        from deploy.client import PolicyClient

        client = PolicyClient(f"tcp://127.0.0.1:{port}", timeout_s=5, retries=1)
        client.hello()

        def once():
            client.infer(batch)
    else:
        import zmq

        from deploy import codec

        sock = zmq.Context().socket(zmq.REQ)
        sock.connect(f"tcp://127.0.0.1:{port}")

        def once():
            sock.send(codec.encode(batch))
            codec.decode(sock.recv(), 1 << 26)

    print("ready", flush=True)
    for _ in sys.stdin:
        t0 = time.perf_counter()
        once()
        print(f"{(time.perf_counter() - t0) * 1000:.6f}", flush=True)


def _start(cmd: list[str]) -> subprocess.Popen:
    p = subprocess.Popen(
        cmd,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    line = p.stdout.readline()
    if "ready" not in line:
        p.kill()
        raise RuntimeError(f"{cmd[:3]} failed: {line}{p.stdout.read()}")
    return p


def interleaved(chunk_len: int, n: int, warm: int, openpi_python: str | None) -> dict[str, list[float]]:
    """Start every transport's server and worker, then run n + warm rounds: each round asks every
    worker for one round trip, in a fresh random order. Returns the post-warm-up latencies (ms)."""
    procs: list[subprocess.Popen] = []
    workers: dict[str, subprocess.Popen] = {}
    me = [sys.executable, __file__]
    try:
        for kind in ("raw", "ours", "openpi"):
            port = _free_port()
            if kind == "openpi":
                if not openpi_python or not Path(openpi_python).exists():
                    continue
                procs.append(_start([openpi_python, "-c", OPENPI_SERVER, str(port), str(chunk_len)]))
                workers[kind] = _start([openpi_python, "-c", OPENPI_WORKER, str(port)])
            else:
                procs.append(_start([*me, "--serve", kind, "--port", str(port), "--chunk", str(chunk_len)]))
                workers[kind] = _start([*me, "--worker", kind, "--port", str(port)])
            procs.append(workers[kind])
        lat: dict[str, list[float]] = {k: [] for k in workers}
        rng = random.Random(chunk_len)
        order = list(workers)
        for i in range(warm + n):
            rng.shuffle(order)
            for kind in order:
                w = workers[kind]
                w.stdin.write("go\n")
                w.stdin.flush()
                ms = float(w.stdout.readline())
                if i >= warm:
                    lat[kind].append(ms)
        return lat
    finally:
        for p in procs:
            p.kill()
            p.wait()


def flooded_neighbour(n_idle: int, n_flood: int, flood_s: float) -> dict[str, np.ndarray]:
    """Robot latency against our server (own process), idle and while tests/deploy/flood.py floods it."""
    from deploy.client import PolicyClient

    port = _free_port()
    server = _start([sys.executable, __file__, "--serve", "ours", "--port", str(port), "--chunk", "16"])
    endpoint = f"tcp://127.0.0.1:{port}"
    batch = _batch()
    out = {}
    try:
        with PolicyClient(endpoint, timeout_s=5, retries=1) as c:
            c.hello()

            def robot(k: int) -> np.ndarray:
                lat = []
                for _ in range(k):
                    lat.append(c.infer(batch).rtt_ms)
                    time.sleep(0.02)
                return np.array(lat)

            out["idle"] = robot(n_idle)
            flood = subprocess.Popen(
                [
                    sys.executable,
                    str(REPO / "tests/deploy/flood.py"),
                    endpoint,
                    "26",
                    "2",
                    str(flood_s),
                    "16",
                ],
                stdout=subprocess.PIPE,
                text=True,
                cwd=REPO,
            )
            assert "ready" in flood.stdout.readline()
            time.sleep(0.5)
            out["flooded"] = robot(n_flood)
            flood.kill()
            flood.wait()
    finally:
        server.kill()
        server.wait()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=3000, help="timed round trips per transport and chunk length")
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--flood-n", type=int, default=300, help="robot round trips while flooded")
    ap.add_argument("--openpi-python", default="/tmp/openpi-venv/bin/python")
    ap.add_argument("--md", default=None, help="append the markdown tables to this file")
    ap.add_argument("--serve", choices=["ours", "raw"], help=argparse.SUPPRESS)
    ap.add_argument("--worker", choices=["ours", "raw"], help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--chunk", type=int, default=8, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        (serve_ours if args.serve == "ours" else serve_raw)(args.port, args.chunk)
        return
    if args.worker:
        worker(args.worker, args.port)
        return
    names = {"raw": "raw REQ/REP", "ours": "**ours**", "openpi": "openpi websocket"}
    lines = [
        "| chunk | transport | n | p50 ms | p99 ms | ours / raw (p50, p99) | ours / openpi (p50, p99) |",
        "|---|---|---|---|---|---|---|",
    ]
    for chunk_len in (8, 50):
        lat = interleaved(chunk_len, args.n, args.warmup, args.openpi_python)
        p = {k: (np.percentile(v, 50), np.percentile(v, 99)) for k, v in lat.items()}
        for k in ("raw", "ours", "openpi"):
            if k not in p:
                lines.append(f"| {chunk_len}x8 | {names[k]} | 0 | not run | (no openpi venv) | | |")
                continue
            r1 = r2 = ""
            if k == "ours":
                r1 = f"{p['ours'][0] / p['raw'][0]:.2f}, {p['ours'][1] / p['raw'][1]:.2f}"
                if "openpi" in p:
                    r2 = f"{p['ours'][0] / p['openpi'][0]:.2f}, {p['ours'][1] / p['openpi'][1]:.2f}"
            lines.append(
                f"| {chunk_len}x8 | {names[k]} | {len(lat[k])} | {p[k][0]:.3f} | {p[k][1]:.3f} | {r1} | {r2} |"
            )
        print("\n".join(lines[-3:]), flush=True)
    flood = flooded_neighbour(300, args.flood_n, flood_s=args.flood_n * 0.03 + 5)
    fl = [
        "| robot client (1 row, 20 ms apart) | n | p50 ms | p99 ms |",
        "|---|---|---|---|",
        *(
            f"| {k} | {len(v)} | {np.percentile(v, 50):.2f} | {np.percentile(v, 99):.2f} |"
            for k, v in flood.items()
        ),
    ]
    load = os.getloadavg()
    text = "\n".join(lines) + "\n\n" + "\n".join(fl)
    print(text)
    print(
        f"load average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; python {platform.python_version()}"
    )
    if args.md:
        with open(args.md, "a") as f:
            f.write(text + f"\n\nload average at the end: {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}\n\n")


if __name__ == "__main__":
    main()
