"""A flooding client, run as its own process:
`python flood.py ENDPOINT ROWS SOCKETS SECONDS in_flight [KEY_DIR]`.

Each of SOCKETS DEALER sockets keeps in_flight valid DROID `infer` requests of ROWS batch rows (ROWS=26 is
~7.9 MB) outstanding for SECONDS, reading replies as they come. Prints one JSON line: replies by code."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import zmq

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def main(
    endpoint: str, rows: int, n_sockets: int, seconds: float, in_flight: int, key_dir: str | None = None
) -> None:
    from deploy import codec
    from deploy.droid import EXTERIOR_IMAGE, WRIST_IMAGE
    from deploy.schema import make_request
    from vla.protocol import STATE_KEY, TASK_KEY

    rng = np.random.default_rng(0)
    obs = {
        EXTERIOR_IMAGE: rng.integers(0, 256, (rows, 224, 224, 3), dtype=np.uint8),
        WRIST_IMAGE: rng.integers(0, 256, (rows, 224, 224, 3), dtype=np.uint8),
        STATE_KEY: rng.normal(size=(rows, 8)).astype(np.float32),
        TASK_KEY: ["flood"] * rows,
    }
    payload = codec.encode(make_request("infer", 1, obs))
    ctx = zmq.Context()
    socks = []
    for _ in range(n_sockets):
        s = ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.SNDHWM, in_flight)
        if key_dir:
            from deploy.curve import CurveClientKeys

            CurveClientKeys.from_files(
                Path(key_dir) / "flood.key_secret", Path(key_dir) / "server.key"
            ).apply(s)
        s.connect(endpoint)
        socks.append([s, 0])
    codes: dict[str, int] = {}
    poller = zmq.Poller()
    for s, _ in socks:
        poller.register(s, zmq.POLLIN)
    print(json.dumps({"ready": True, "bytes": len(payload)}), flush=True)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for entry in socks:
            s = entry[0]
            while entry[1] < in_flight:
                try:
                    s.send_multipart([b"", payload], zmq.NOBLOCK, copy=False)
                except zmq.Again:
                    break
                entry[1] += 1
        for s, _ in poller.poll(5):
            entry = next(e for e in socks if e[0] is s)
            while s.poll(0):
                reply = codec.decode(s.recv_multipart()[-1], 1 << 26)
                code = "ok" if reply.get("ok") else reply["error"]["code"]
                codes[code] = codes.get(code, 0) + 1
                entry[1] = max(0, entry[1] - 1)
    print(json.dumps(codes), flush=True)
    for s, _ in socks:
        s.close()
    ctx.term()


if __name__ == "__main__":
    main(
        sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]), *sys.argv[6:7]
    )
