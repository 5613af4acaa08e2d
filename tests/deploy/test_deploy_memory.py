"""Issue 15 acceptance: the server's RSS stays under a stated bound through the attacks of items 1-3, and a
robot client keeps its latency while another client floods. The server runs in its own process."""

import threading
import time

import numpy as np
import pytest
import zmq
from conftest import droid_batch
from procs import rss_mib, start_flood, start_server
from zmtp import RawZmtpDealer

from deploy import codec
from deploy.client import PolicyClient
from deploy.schema import make_request

BUDGET_MIB = 128  # MemoryBudget(growth_bytes) given to the server
BOUND_MIB = 192  # stated bound on RSS growth: the budget + what can arrive between two checks (5 ms)


class RssSampler:
    def __init__(self, pid: int):
        self.pid, self.samples = pid, []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.samples.append(rss_mib(self.pid))
            time.sleep(0.002)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join(2)


def _unread_envelope_attack(endpoint: str) -> None:
    s = zmq.Context.instance().socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    s.connect(endpoint)
    big = b"E" * (15 * 10**6)
    for _ in range(4):  # 4 x 15 MB envelope frames, replies never read
        s.send_multipart([big, b"", codec.encode(make_request("ping", 1))])
    time.sleep(0.5)
    s.close()


def _nil_attack(endpoint: str) -> None:
    nils = b"\xdc\x00\x80" + (b"\xdc\xff\xff" + b"\xc0" * 65535) * 128
    s = zmq.Context.instance().socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    s.connect(endpoint)
    for field in ("v", "type", "id"):
        msg = make_request("ping", 1)
        msg.pop(field)
        msg[field] = 0
        s.send_multipart([b"", codec.encode(msg)[:-1] + nils])
        assert s.poll(5000)
        assert len(s.recv_multipart()[-1]) < 1024
    s.close()


@pytest.mark.slow
def test_rss_stays_bounded_through_the_attacks_of_items_1_to_3():
    proc, endpoint = start_server(growth_mb=BUDGET_MIB)
    try:
        with PolicyClient(endpoint, timeout_s=5, retries=1) as c:
            c.infer(droid_batch(1))  # warm up
        base = rss_mib(proc.pid)
        with RssSampler(proc.pid) as rss:
            raw = RawZmtpDealer(endpoint)  # item 1: a message that is never finished
            frame = memoryview(b"\0" * (8 << 20))
            sent = 0
            try:
                for _ in range(40):
                    raw.send_frame(frame, more=True)
                    sent += 1
            except OSError:
                pass  # the server dropped the connection: that is the defence
            raw.close()
            _unread_envelope_attack(endpoint)  # item 1: envelope frames, replies not read
            _nil_attack(endpoint)  # items 2 + 3: 8 MiB of nils quoted back
            flood = start_flood(endpoint, seconds=4, in_flight=16)  # item 3: valid 7.9 MB requests
            flood.wait(30)
        peak = max(rss.samples) - base
        with PolicyClient(endpoint, timeout_s=5, retries=2) as c:
            health = c.health()
            assert c.infer(droid_batch(1)).actions.shape == (1, 16, 8)
        print(
            f"RSS: base {base:.0f} MiB, peak growth {peak:.0f} MiB (bound {BOUND_MIB}), raw frames sent "
            f"{sent}/40, purges {health['memory_purges']}, samples {len(rss.samples)}"
        )
        assert peak < BOUND_MIB, f"server RSS grew by {peak:.0f} MiB"
        assert health["memory_purges"] >= 1
    finally:
        proc.kill()
        proc.wait()


def _robot_latency(endpoint: str, n: int) -> np.ndarray:
    batch = droid_batch(1)
    lat = []
    with PolicyClient(endpoint, timeout_s=5, retries=1) as c:
        c.hello()
        for _ in range(n):
            lat.append(c.infer(batch).rtt_ms)
            time.sleep(0.02)
    return np.array(lat)


@pytest.mark.slow
def test_robot_keeps_its_latency_while_another_client_floods():
    proc, endpoint = start_server()
    try:
        idle = _robot_latency(endpoint, 60)
        flood = start_flood(endpoint, seconds=8, in_flight=16)
        time.sleep(0.5)
        flooded = _robot_latency(endpoint, 150)
        flood.kill()
        flood.wait()
    finally:
        proc.kill()
        proc.wait()
    p = {k: np.percentile(v, [50, 99]) for k, v in (("idle", idle), ("flooded", flooded))}
    print(f"robot latency ms p50/p99: idle {p['idle'].round(2)}, flooded {p['flooded'].round(2)}")
    assert p["flooded"][0] < 15.0 and p["flooded"][1] < 100.0
