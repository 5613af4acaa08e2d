"""Thousands of malformed or hostile messages: every one gets an error reply, the server keeps serving."""

import msgpack
import numpy as np
import zmq
from conftest import StateEchoPolicy, droid_batch

from deploy import codec
from deploy.client import PolicyClient
from deploy.droid import EXTERIOR_IMAGE
from deploy.schema import make_request
from vla.protocol import STATE_KEY, TASK_KEY

N_MESSAGES = 3000


def _hostile_messages(rng: np.random.Generator, n: int):
    valid = codec.encode(make_request("infer", 1, droid_batch(1)))
    small_valid = codec.encode(make_request("ping", 1))
    scalars = [None, True, 1.5, -(2**63), 2**64 - 1, "x" * 300, b"\x00\xff", [], {}, [[[]]], float("nan")]
    for i in range(n):
        kind = i % 10
        if kind == 0:  # random bytes
            yield rng.bytes(int(rng.integers(0, 64)))
        elif kind == 1:  # truncated valid message
            yield valid[: int(rng.integers(0, len(valid)))]
        elif kind == 2:  # bit flips in a small valid message
            b = bytearray(small_valid)
            for _ in range(int(rng.integers(1, 4))):
                b[int(rng.integers(0, len(b)))] ^= 1 << int(rng.integers(0, 8))
            yield bytes(b)
        elif kind == 3:  # envelope fields with wrong types
            msg = make_request("infer", 1, {})
            key = ["v", "type", "id", "t_client", "obs"][int(rng.integers(0, 5))]
            msg[key] = scalars[int(rng.integers(0, len(scalars)))]
            yield msgpack.packb(msg)
        elif kind == 4:  # hostile ndarray extension payloads
            dtype = ["|O", "|V4", "<c8", "<U4", "<M8", "<f4", "|u1"][int(rng.integers(0, 7))]
            shape = [int(x) for x in rng.integers(-2, 5, size=int(rng.integers(0, 10)))]
            arr = {codec.NDARRAY_KEY: [dtype, shape], "data": rng.bytes(int(rng.integers(0, 32)))}
            msg = make_request("infer", 1, {STATE_KEY: arr, TASK_KEY: ["t"]})
            yield msgpack.packb(msg)
        elif kind == 5:  # observation with wrong shapes / dtypes
            obs = droid_batch(1, seed=i)
            key = [EXTERIOR_IMAGE, STATE_KEY][i % 2]
            obs[key] = np.zeros(
                tuple(int(x) for x in rng.integers(0, 4, size=int(rng.integers(1, 5)))),
                [np.uint8, np.float32, np.int16, np.bool_][int(rng.integers(0, 4))],
            )
            yield codec.encode(make_request("infer", i, obs))
        elif kind == 6:  # NaN / inf in the state
            obs = droid_batch(1, seed=i)
            obs[STATE_KEY][0, int(rng.integers(0, 8))] = [np.nan, np.inf, -np.inf][i % 3]
            yield codec.encode(make_request("infer", i, obs))
        elif kind == 7:  # deeply nested structure
            depth = int(rng.integers(100, 5000))
            yield b"\x91" * depth + b"\xc0"
        elif kind == 8:  # wrong schema version
            msg = make_request("ping", i)
            msg["v"] = int(rng.integers(2, 1000))
            yield codec.encode(msg)
        else:  # declared lengths far beyond the buffer (bin32 / map32 / array32 headers)
            yield [b"\xc6\xff\xff\xff\xf0", b"\xdf\xff\xff\xff\xff", b"\xdd\x7f\xff\xff\xff"][
                i % 3
            ] + rng.bytes(8)


def test_fuzz_every_hostile_message_gets_an_error_reply_and_server_keeps_serving(serve):
    server = serve(StateEchoPolicy(), max_message_bytes=1 << 20)
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(server.endpoint)
    rng = np.random.default_rng(1234)
    codes: dict[str, int] = {}
    try:
        for payload in _hostile_messages(rng, N_MESSAGES):
            sock.send_multipart([b"", payload])
            assert sock.poll(5000), f"no reply to hostile payload {payload[:40]!r}"
            reply = codec.decode(sock.recv_multipart()[-1], 1 << 24)
            if reply["ok"]:  # a bit flip can still yield a valid ping; nothing else may succeed
                assert reply["type"] == "ping"
                continue
            codes[reply["error"]["code"]] = codes.get(reply["error"]["code"], 0) + 1
            assert reply["error"]["message"]
    finally:
        sock.close()
    assert sum(codes.values()) >= N_MESSAGES * 0.95
    assert {"malformed", "bad_request", "bad_observation", "bad_version"} <= set(codes)
    assert server.stats.requests == N_MESSAGES
    with PolicyClient(server.endpoint, timeout_s=2, retries=1) as client:
        assert client.infer(droid_batch(1)).actions.shape == (1, 16, 8)
        assert client.health()["status"] == "serving"
