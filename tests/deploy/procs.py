"""A policy server in its own process (so a client's latency and the server's RSS are measured apart from
the test process): `python procs.py '{"growth_mb": 128, "rate": true}'` prints its endpoint, then serves."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


def start_server(**options) -> tuple[subprocess.Popen, str]:
    """Start a StateEchoPolicy server process; return (process, endpoint). Kill the process when done."""
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__)), json.dumps(options)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    endpoint = proc.stdout.readline().strip()
    if not endpoint.startswith("tcp://"):
        proc.kill()
        raise RuntimeError(f"server process failed to start: {endpoint!r}")
    return proc, endpoint


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


def start_flood(endpoint: str, rows: int = 26, sockets: int = 2, seconds: float = 5, in_flight: int = 16):
    """Start tests/deploy/flood.py; returns the process once it is sending."""
    proc = subprocess.Popen(
        [
            sys.executable,
            str(HERE / "flood.py"),
            endpoint,
            str(rows),
            str(sockets),
            str(seconds),
            str(in_flight),
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    assert "ready" in proc.stdout.readline()
    return proc


def _serve(options: dict) -> None:
    sys.path[:0] = [str(HERE), str(REPO)]
    from conftest import StateEchoPolicy

    from deploy.admission import AdmissionConfig
    from deploy.memguard import MemoryBudget
    from deploy.server import PolicyServer

    kw = {}
    if "growth_mb" in options:
        kw["memory"] = MemoryBudget(growth_bytes=int(options["growth_mb"] * 2**20))
    if not options.get("rate", True):
        kw["admission"] = AdmissionConfig(rate_hz=None, bytes_per_s=None)
    server = PolicyServer(StateEchoPolicy(), "tcp://127.0.0.1:*", **kw)
    print(server.endpoint, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    _serve(json.loads(sys.argv[1]))
