"""The shared policy protocol refuses malformed batches and chunks with messages that name the problem."""

import numpy as np
import pytest

from vla.protocol import PolicySpec, ProtocolError, validate_batch, validate_chunk

SPEC = PolicySpec(
    policy_id="t",
    action_space="libero_osc_delta",
    action_dim=7,
    chunk_len=4,
    state_dim=8,
    image_shapes={"observation.images.image": (8, 8, 3)},
    n_action_steps=2,
)


def good_batch(b=2):
    return {
        "observation.images.image": np.zeros((b, 8, 8, 3), np.uint8),
        "observation.state": np.zeros((b, 8), np.float32),
        "task": ["pick"] * b,
    }


def test_valid_batch_and_spec_roundtrip():
    assert validate_batch(SPEC, good_batch(3)) == 3
    assert PolicySpec.from_dict(SPEC.to_dict()) == SPEC
    assert SPEC.steps_per_query == 2


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda b: b.pop("observation.state"), "missing keys"),
        (lambda b: b.__setitem__("task", 5), "task must be a list"),
        (lambda b: b.__setitem__("task", "pick"), "task must be a list"),
        (lambda b: b.__setitem__("task", ["a"]), "task must be a list of 2"),
        (lambda b: b["observation.state"].__setitem__((0, 0), np.nan), "NaN"),
        (lambda b: b.__setitem__("observation.state", np.zeros((2, 7), np.float32)), r"\(B, 8\)"),
        (lambda b: b.__setitem__("observation.images.image", np.zeros((2, 8, 8, 3), np.float32)), "uint8"),
        (lambda b: b.__setitem__("observation.images.image", np.zeros((2, 9, 8, 3), np.uint8)), "shape"),
    ],
)
def test_bad_batches_are_refused(mutate, message):
    batch = good_batch()
    mutate(batch)
    with pytest.raises(ProtocolError, match=message):
        validate_batch(SPEC, batch)


def test_chunks():
    ok = validate_chunk(SPEC, np.zeros((2, 4, 7), np.float64), batch=2)
    assert ok.dtype == np.float32
    with pytest.raises(ProtocolError, match="shape"):
        validate_chunk(SPEC, np.zeros((2, 3, 7)), batch=2)
    bad = np.zeros((2, 4, 7))
    bad[1, 2, 3] = np.inf
    with pytest.raises(ProtocolError, match="NaN or inf"):
        validate_chunk(SPEC, bad, batch=2)


def test_bad_spec():
    with pytest.raises(ValueError, match="n_action_steps"):
        PolicySpec(policy_id="t", action_space="x", action_dim=7, chunk_len=4, state_dim=8, n_action_steps=5)
    with pytest.raises(ValueError, match="must start with"):
        PolicySpec(
            policy_id="t",
            action_space="x",
            action_dim=7,
            chunk_len=4,
            state_dim=8,
            image_shapes={"rgb": (1, 1, 3)},
        )
