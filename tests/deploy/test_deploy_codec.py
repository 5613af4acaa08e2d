import msgpack
import numpy as np
import pytest

from deploy import codec


@pytest.mark.parametrize(
    "arr",
    [
        np.zeros((2, 224, 224, 3), np.uint8),
        np.arange(12, dtype=np.float32).reshape(3, 4),
        np.array(3.5),
        np.zeros((0, 4), np.int64),
        np.arange(6, dtype=">i4"),
        np.array([True, False]),
        np.arange(12.0).reshape(3, 4)[:, 1],  # non-contiguous view
    ],
)
def test_ndarray_roundtrip_preserves_dtype_shape_values_and_is_writable(arr):
    out = codec.decode(codec.encode({"a": arr, "s": "x", "n": [1, 2.5]}), 1 << 22)
    assert out["a"].dtype == arr.dtype and out["a"].shape == arr.shape
    np.testing.assert_array_equal(out["a"], arr)
    assert out["a"].flags.writeable
    assert out["s"] == "x" and out["n"] == [1, 2.5]


@pytest.mark.parametrize("arr", [np.array([object()], dtype=object), np.zeros(2, complex), np.array(["a"])])
def test_encode_refuses_non_numeric_dtypes(arr):
    with pytest.raises(TypeError):
        codec.encode(arr)


def _ext(dtype, shape, data):
    return msgpack.packb({codec.NDARRAY_KEY: [dtype, shape], "data": data})


@pytest.mark.parametrize(
    "payload, reason",
    [
        (_ext("|O", [1], b"\0" * 8), "dtype"),
        (_ext("|V8", [1], b"\0" * 8), "dtype"),
        (_ext("<c16", [1], b"\0" * 16), "dtype"),
        (_ext("<f4", [3], b"\0" * 8), "needs 12 bytes"),
        (_ext("<f4", [-1], b""), "shape"),
        (_ext("<f4", [1] * 9, b"\0" * 4), "shape"),
        (msgpack.packb(msgpack.ExtType(7, b"x")), "extension types are not used"),
        (msgpack.packb({codec.NDARRAY_KEY: ["<f4", [1]], "data": b"\0" * 4, "x": 1}), "exactly the keys"),
        (msgpack.packb({codec.NDARRAY_KEY: "<f4", "data": b""}), "header"),
        (msgpack.packb({codec.NDARRAY_KEY: ["<f4", [1]], "data": "text"}), "must be bytes"),
        (b"\xc1", "not a valid msgpack"),
        (b"", "not a valid msgpack"),
        (msgpack.packb({1: 2}), "not a valid msgpack"),  # non-string map keys
    ],
)
def test_decode_rejects_hostile_payloads_with_reason(payload, reason):
    with pytest.raises(codec.DecodeError, match=reason):
        codec.decode(payload, 1 << 20)


def test_decode_enforces_size_limit_before_parsing():
    data = codec.encode(np.zeros(1000, np.uint8))
    with pytest.raises(codec.DecodeError, match="exceeds the limit"):
        codec.decode(data, 100)
