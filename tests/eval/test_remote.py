"""A policy served by deploy's ZeroMQ server is evaluated by the same harness (batched in the parent),
named by its address like any other policy: `load_policy("tcp://host:port")`."""

import json

import numpy as np
import pytest

from deploy.remote import RemotePolicy
from deploy.server import PolicyServer
from envs.eval import EvalRun, build_episodes, evaluate
from vla.conventions import ConventionError
from vla.policies import HoldStillPolicy, load_policy


@pytest.fixture
def server():
    srv = PolicyServer(HoldStillPolicy(chunk_len=4), "tcp://127.0.0.1:*", max_batch=4).start()
    yield srv
    srv.stop()


def test_remote_policy_speaks_the_protocol(server):
    p = load_policy(server.endpoint, timeout_s=5)
    assert isinstance(p, RemotePolicy)
    assert p.spec.chunk_len == 4 and p.spec.action_dim == 7 and p.spec.action_space == "libero_osc_delta"
    batch = {"observation.state": np.zeros((3, 8), np.float32), "task": ["a", "b", "c"]}
    chunk = p.predict_chunk(batch)
    assert chunk.shape == (3, 4, 7) and np.all(chunk[..., -1] == -1) and np.all(chunk[..., :6] == 0)
    p.close()


def test_served_policy_of_another_action_space_is_refused_at_the_handshake(server):
    with pytest.raises(ConventionError, match="'hold' \\(libero_osc_delta.*droid_joint_velocity"):
        load_policy(server.endpoint, action_space="droid_joint_velocity", timeout_s=5)


def test_served_policy_through_the_harness(server, tmp_path):
    eps = build_episodes(["libero_object"], [0], 2, [7])
    summary = evaluate(
        EvalRun(
            out_dir=tmp_path,
            policy=server.endpoint,
            policy_kwargs={"timeout_s": 10},
            workers=2,
            max_steps=8,
            progress=False,
            plot=False,
            videos_per_task=0,
        ),
        eps,
    )
    assert summary["overall"]["episodes"] == 2 and summary["overall"]["errors"] == 0
    info = json.loads((tmp_path / "run_info.json").read_text())
    assert info["policy_placement"] == "parent" and info["mean_policy_batch"] >= 1
    # 8 steps / chunk 4 = 2 queries per episode; the parent may batch both workers' queries into one request
    assert 2 <= server.stats.inferences <= 4
