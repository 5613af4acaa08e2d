"""Fair serving (issue 15 item 3): per-client queues, byte-fair order, busy and rate-limit refusals."""

import time

import pytest

from deploy.admission import AdmissionConfig, FairQueue, Incoming, TokenBucket
from deploy.schema import ErrorCode

NO_RATE = AdmissionConfig(rate_hz=None, bytes_per_s=None, max_queued_bytes=1 << 30)


def msg(key: bytes, size: int, t0: float) -> Incoming:
    return Incoming(key, [key, b""], b"", size, 0.0, t0)


def test_small_requests_of_a_robot_go_ahead_of_a_flooders_queue():
    q = FairQueue(NO_RATE, 8 << 20)
    t = 0.0
    for _ in range(4):
        t += 1
        assert q.admit(msg(b"flood", 7_900_000, t)) is None
    order = [q.pop().key]  # the flooder's first request is being served ...
    assert q.admit(msg(b"robot", 300_000, t + 1)) is None  # ... when the robot's arrives
    order += [q.pop().key for _ in range(4)]
    assert order == [b"flood", b"robot", b"flood", b"flood", b"flood"]
    assert q.pop() is None and len(q) == 0 and q.queued_bytes == 0


def test_equal_clients_alternate_oldest_first():
    q = FairQueue(NO_RATE, 8 << 20)
    for i in range(3):
        q.admit(msg(b"a", 1000, 2 * i))
        q.admit(msg(b"b", 1000, 2 * i + 1))
    popped = [(m.key, m.t0) for m in iter(q.pop, None)]
    assert popped == [(b"a", 0), (b"b", 1), (b"a", 2), (b"b", 3), (b"a", 4), (b"b", 5)]


def test_per_client_queue_and_total_bytes_are_capped():
    q = FairQueue(AdmissionConfig(rate_hz=None, bytes_per_s=None, max_queued_per_client=2,
                                  max_queued_bytes=10_000), 8 << 20)  # fmt: skip
    assert q.admit(msg(b"a", 10, 0)) is None and q.admit(msg(b"a", 10, 1)) is None
    assert q.admit(msg(b"a", 10, 2)) is ErrorCode.BUSY  # a's queue is full
    assert q.admit(msg(b"b", 10, 3)) is None  # b is not affected
    assert q.admit(msg(b"c", 9_000, 4)) is ErrorCode.BUSY  # over the total byte cap


def test_rate_limits_refuse_a_flooder_and_spare_others():
    q = FairQueue(
        AdmissionConfig(rate_hz=10, rate_burst=5, bytes_per_s=None, max_queued_per_client=1000), 1 << 20
    )
    results = [q.admit(msg(b"flood", 100, i)) for i in range(50)]
    assert results.count(None) in (5, 6) and results.count(ErrorCode.RATE_LIMITED) >= 44
    assert q.admit(msg(b"robot", 100, 99)) is None
    b = TokenBucket(rate=1000.0, capacity=1000.0)
    assert b.take(1000) and not b.take(100)
    time.sleep(0.12)
    assert b.take(100)


def test_config_checks():
    with pytest.raises(ValueError, match="rate_hz"):
        AdmissionConfig(rate_hz=0)
    with pytest.raises(ValueError, match="max_queued_per_client"):
        AdmissionConfig(max_queued_per_client=0)
