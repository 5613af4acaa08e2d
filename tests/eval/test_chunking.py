"""The one chunk executor (open loop, temporal ensembling), placement rules and batch stacking (no simulator)."""

import numpy as np
import pytest

from envs.eval.policies import placement
from vla.chunking import ChunkExecutor, TemporalEnsembler
from vla.policies import stack_batches


def _chunk(values) -> np.ndarray:
    return np.asarray(values, np.float32)[:, None] * np.ones((1, 2), np.float32)


def test_open_loop_executes_n_actions_then_asks_again():
    ex = ChunkExecutor(3)
    assert ex.needs_query() and ex.steps_per_query == 3
    ex.push(_chunk([0, 1, 2, 3, 4]))
    got = [ex.pop()[0] for _ in range(3)]
    assert got == [0, 1, 2] and ex.needs_query()
    ex.push(_chunk([10, 11, 12, 13, 14]))
    assert ex.pop()[0] == 10 and ex.remaining == 2
    ex.drop()
    assert ex.needs_query()
    with pytest.raises(RuntimeError, match="query the policy"):
        ex.pop()
    with pytest.raises(ValueError, match=">= 1"):
        ChunkExecutor(0)


def test_executor_with_ensembling_queries_every_step():
    ex = ChunkExecutor(8, temporal_ensemble=0.0)
    assert ex.steps_per_query == 1
    ex.push(_chunk([0, 1, 2]))
    assert ex.pop()[0] == 0 and ex.needs_query()
    ex.push(_chunk([10, 10, 10]))
    assert np.isclose(ex.pop()[0], (1 + 10) / 2)
    ex.reset()  # a new episode forgets the history
    ex.push(_chunk([5, 5, 5]))
    assert ex.pop()[0] == 5


def test_temporal_ensembling_weights_older_predictions_first():
    ens = TemporalEnsembler(k=0.0)  # k = 0: plain mean of every prediction for this step
    c0 = _chunk([0, 1, 2])
    assert np.allclose(ens(c0), 0)
    assert np.allclose(ens(np.full((3, 2), 10, np.float32)), (1 + 10) / 2)
    assert np.allclose(ens(np.full((3, 2), 20, np.float32)), (2 + 10 + 20) / 3)
    assert np.allclose(
        ens(np.full((3, 2), 30, np.float32)), (10 + 20 + 30) / 3
    )  # c0 no longer covers this step
    big = TemporalEnsembler(k=50.0)  # large k: the oldest prediction dominates (ACT's convention)
    big(c0)
    assert np.allclose(big(np.full((3, 2), 10, np.float32)), 1, atol=1e-3)


def test_placement_rules_and_batch_stacking():
    assert placement("expert") == "worker" and placement("hold") == "worker"
    assert placement("pkg.mod:factory") == "parent" and placement("tcp://127.0.0.1:5555") == "parent"
    with pytest.raises(ValueError, match="only run in the worker"):
        placement("expert", "parent")
    with pytest.raises(ValueError, match="unknown policy 'remote'"):
        placement("remote")  # the old name of a served policy is gone: tcp://host:port
    a = {"observation.state": np.zeros((1, 8), np.float32), "task": ["x"]}
    b = {"observation.state": np.ones((2, 8), np.float32), "task": ["y", "z"]}
    s = stack_batches([a, b])
    assert s["observation.state"].shape == (3, 8) and s["task"] == ["x", "y", "z"]
    assert s["observation.state"][1:].sum() == 16
