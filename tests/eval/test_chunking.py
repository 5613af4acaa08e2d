"""Open-loop chunk execution settings: n_action_steps override and ACT temporal ensembling (no simulator)."""

import numpy as np
import pytest

from envs.eval.chunking import with_action_steps
from envs.eval.policies import placement, stack_batches
from envs.policies import HoldStillPolicy
from envs.rollout import TemporalEnsembler


def test_action_steps_override_is_clamped_to_the_chunk():
    p = HoldStillPolicy(chunk_len=8)
    assert with_action_steps(p, 4).spec.steps_per_query == 4
    assert with_action_steps(p, 50).spec.steps_per_query == 8
    assert with_action_steps(p, None) is p
    with pytest.raises(ValueError):
        with_action_steps(p, 0)


def test_temporal_ensembling_weights_older_predictions_first():
    ens = TemporalEnsembler(k=0.0)  # k = 0: plain mean of every prediction for this step
    c0 = np.arange(3, dtype=np.float32)[:, None] * np.ones((3, 2), np.float32)  # predicts 0, 1, 2
    assert np.allclose(ens(c0), 0)
    c1 = np.full((3, 2), 10, np.float32)
    assert np.allclose(ens(c1), (1 + 10) / 2)  # c0's step-1 prediction and c1's step-0 one
    c2 = np.full((3, 2), 20, np.float32)
    assert np.allclose(ens(c2), (2 + 10 + 20) / 3)
    c3 = np.full((3, 2), 30, np.float32)
    assert np.allclose(ens(c3), (10 + 20 + 30) / 3)  # c0 no longer covers this step
    big = TemporalEnsembler(k=50.0)  # large k: the oldest prediction dominates (ACT's convention)
    big(c0)
    assert np.allclose(big(c1), 1, atol=1e-3)


def test_placement_rules_and_batch_stacking():
    assert placement("expert") == "worker" and placement("hold") == "worker"
    assert placement("pkg.mod:factory") == "parent" and placement("remote") == "parent"
    with pytest.raises(ValueError, match="only run in the worker"):
        placement("expert", "parent")
    a = {"observation.state": np.zeros((1, 8), np.float32), "task": ["x"]}
    b = {"observation.state": np.ones((2, 8), np.float32), "task": ["y", "z"]}
    s = stack_batches([a, b])
    assert s["observation.state"].shape == (3, 8) and s["task"] == ["x", "y", "z"]
