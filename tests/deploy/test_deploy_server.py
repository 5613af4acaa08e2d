import threading
import time

import numpy as np
import pytest
import zmq
from conftest import FaultyPolicy, StateEchoPolicy, droid_batch

from deploy import codec
from deploy.client import PolicyClient, RemoteError, ServerUnreachable
from deploy.droid import EXTERIOR_IMAGE
from deploy.policies import DroidHoldStillPolicy as HoldStillPolicy
from deploy.policies import RandomMLPPolicy, ScriptedWavePolicy
from deploy.schema import SCHEMA_VERSION, make_request
from vla.protocol import STATE_KEY, TASK_KEY


def raw_roundtrip(endpoint: str, payload: bytes, timeout_ms: int = 2000) -> dict:
    ctx = zmq.Context.instance()
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    s.connect(endpoint)
    try:
        s.send_multipart([b"", payload])
        assert s.poll(timeout_ms), "server did not answer"
        frames = s.recv_multipart()
        return codec.decode(frames[-1], 1 << 24)
    finally:
        s.close()


def test_handshake_returns_versioned_metadata_with_policy_spec(serve):
    policy = StateEchoPolicy()
    server = serve(policy)
    with PolicyClient(server.endpoint, timeout_s=2, retries=1) as client:
        meta = client.hello()
        assert meta["schema_version"] == SCHEMA_VERSION and meta["protocol"] == "pion-vla-zmq"
        assert meta["policy"] == policy.spec.to_dict()
        assert client.spec == policy.spec
        assert meta["state_keys"] == [STATE_KEY] and EXTERIOR_IMAGE in meta["image_keys"]
        assert meta["policy"]["image_shapes"][EXTERIOR_IMAGE] == [224, 224, 3]


def test_infer_returns_chunk_with_echoed_id_and_server_timing(serve):
    server = serve(StateEchoPolicy())
    batch = droid_batch(2)
    with PolicyClient(server.endpoint, timeout_s=2, retries=1) as client:
        res = client.infer(batch)
        assert res.actions.shape == (2, 16, 8) and res.actions.dtype == np.float32
        np.testing.assert_allclose(res.actions[:, 7], batch[STATE_KEY])
        for key in ("t_recv", "t_send", "decode_ms", "infer_ms", "server_ms"):
            assert key in res.server_timing
        assert 0 <= res.server_timing["infer_ms"] <= res.server_timing["server_ms"] <= res.rtt_ms
        raw = client.request("infer", batch)
        assert raw["id"] == res.request_id + 1 and raw["t_client"] > 0


def _bad(mutate):
    b = droid_batch(1)
    mutate(b)
    return b


@pytest.mark.parametrize(
    "batch, match",
    [
        (_bad(lambda b: b.pop(EXTERIOR_IMAGE)), "missing keys"),
        (_bad(lambda b: b.update({EXTERIOR_IMAGE: np.zeros((1, 128, 128, 3), np.uint8)})), "shape"),
        (_bad(lambda b: b.update({EXTERIOR_IMAGE: np.zeros((1, 224, 224, 3), np.float32)})), "uint8"),
        (_bad(lambda b: b[STATE_KEY].__setitem__((0, 3), np.nan)), "NaN"),
        (_bad(lambda b: b[STATE_KEY].__setitem__((0, 3), np.inf)), "NaN or inf"),
        (_bad(lambda b: b.update({STATE_KEY: np.zeros((1, 8), np.int64)})), "float"),
        (_bad(lambda b: b.update({TASK_KEY: 42})), "task"),
        (_bad(lambda b: b.update({TASK_KEY: ["a", "b"]})), "task"),
    ],
)
def test_bad_observations_get_structured_errors_and_server_keeps_serving(serve, batch, match):
    server = serve(StateEchoPolicy())
    with PolicyClient(server.endpoint, timeout_s=2, retries=1) as client:
        with pytest.raises(RemoteError, match=match) as err:
            client.infer(batch)
        assert err.value.code == "bad_observation"
        assert client.infer(droid_batch(1)).actions.shape == (1, 16, 8)


@pytest.mark.parametrize(
    "mode, code", [("raise", "inference_failed"), ("nan", "bad_action"), ("shape", "bad_action")]
)
def test_policy_faults_become_error_replies(serve, mode, code):
    server = serve(FaultyPolicy(mode))
    with PolicyClient(server.endpoint, timeout_s=2, retries=1) as client:
        for _ in range(3):
            with pytest.raises(RemoteError) as err:
                client.infer(droid_batch(1))
            assert err.value.code == code
        assert client.health()["errors"] == 3


def test_envelope_errors_version_size_and_garbage(serve):
    server = serve(StateEchoPolicy(), max_message_bytes=200_000)
    msg = make_request("ping", 7)
    msg["v"] = 99
    r = raw_roundtrip(server.endpoint, codec.encode(msg))
    assert r["error"]["code"] == "bad_version" and r["id"] == 7 and "v=1" in r["error"]["message"]
    r = raw_roundtrip(server.endpoint, codec.encode(make_request("infer", 8, droid_batch(1))))
    assert r["error"]["code"] == "too_large" and "200000" in r["error"]["message"]
    r = raw_roundtrip(server.endpoint, b"\x93\x01garbage")
    assert r["error"]["code"] == "malformed"
    r = raw_roundtrip(server.endpoint, codec.encode({"v": 1, "type": "shutdown", "id": 1, "t_client": 0.0}))
    assert r["error"]["code"] == "bad_request" and "shutdown" in r["error"]["message"]
    assert raw_roundtrip(server.endpoint, codec.encode(make_request("ping", 9)))["pong"] is True


def test_concurrent_requests_are_batched_and_split_back_correctly(serve):
    policy = StateEchoPolicy(delay_s=0.05)
    server = serve(policy, max_batch=8, batch_window_ms=20)
    results: dict[int, np.ndarray] = {}
    batches = {i: droid_batch(1, seed=i) for i in range(6)}

    def worker(i):
        with PolicyClient(server.endpoint, timeout_s=5, retries=1) as c:
            results[i] = c.infer(batches[i]).actions

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(results) == 6
    for i, actions in results.items():
        np.testing.assert_allclose(actions[0, 0], batches[i][STATE_KEY][0])
    assert server.stats.batched_calls >= 1 and max(policy.calls) > 1
    assert sum(policy.calls) == 6


@pytest.mark.parametrize("cls", [HoldStillPolicy, ScriptedWavePolicy, RandomMLPPolicy])
def test_builtin_policies_serve_valid_droid_chunks(serve, cls):
    server = serve(cls())
    with PolicyClient(server.endpoint, timeout_s=5, retries=1) as client:
        a = client.infer(droid_batch(2)).actions
    assert a.shape == (2, 16, 8)
    assert np.all(np.abs(a[..., :7]) <= 1) and np.all((a[..., 7] >= 0) & (a[..., 7] <= 1))


def test_unreachable_server_reports_diagnostic_after_retries(caplog):
    with (
        PolicyClient("tcp://127.0.0.1:1", timeout_s=0.1, retries=3) as client,
        pytest.raises(ServerUnreachable, match="server down, wrong address, or authentication failure"),
    ):
        client.ping()
    attempts = [r for r in caplog.records if "no reply from" in r.getMessage()]
    assert [r.getMessage().split("attempt ")[1][:3] for r in attempts] == ["1/3", "2/3", "3/3"]


def test_client_recovers_after_server_restart_on_same_port(serve):
    server = serve(StateEchoPolicy())
    endpoint = server.endpoint
    with PolicyClient(endpoint, timeout_s=0.3, retries=2) as client:
        client.ping()
        server.stop()
        with pytest.raises(ServerUnreachable):
            client.ping()
        serve(StateEchoPolicy(), bind=endpoint)
        assert client.infer(droid_batch(1)).actions.shape == (1, 16, 8)


def test_graceful_shutdown_stops_thread_and_releases_port(serve):
    server = serve(StateEchoPolicy())
    endpoint = server.endpoint
    t0 = time.monotonic()
    server.stop()
    assert time.monotonic() - t0 < 2.0
    again = serve(StateEchoPolicy(), bind=endpoint)  # the port is free again
    assert again.endpoint == endpoint


def test_far_oversized_message_is_dropped_by_libzmq_and_server_keeps_serving(serve):
    server = serve(StateEchoPolicy(), max_message_bytes=10_000)
    with pytest.raises(AssertionError, match="did not answer"):
        raw_roundtrip(server.endpoint, b"\0" * 1_000_000, timeout_ms=300)
    assert raw_roundtrip(server.endpoint, codec.encode(make_request("ping", 1)))["pong"] is True


def test_unexpected_server_side_exception_becomes_internal_error_reply(serve, monkeypatch):
    server = serve(StateEchoPolicy())
    monkeypatch.setattr(server, "_answer", lambda kind: 1 / 0)  # simulate a bug in the ping handler
    with PolicyClient(server.endpoint, timeout_s=2, retries=1) as client:
        with pytest.raises(RemoteError) as err:
            client.ping()
        assert err.value.code == "internal" and "ZeroDivisionError" in err.value.message
        assert client.infer(droid_batch(1)).actions.shape == (1, 16, 8)
