"""Wire encoding for the policy link: msgpack with numpy arrays as tagged maps. Never pickle.

An ndarray travels as the map {"__ndarray__": [dtype, shape], "data": <raw bytes>} (the key
"__ndarray__" is reserved). Only plain numeric dtypes (bool, signed/unsigned int, float) are accepted
on decode, so a hostile peer cannot make us build object, structured or void arrays; the byte count
must match dtype x shape, and every size is bounded before any allocation. Decoded arrays are
writable copies owned by the receiver.
"""

from __future__ import annotations

import re
from typing import Any

import msgpack
import numpy as np

NDARRAY_KEY = "__ndarray__"
MAX_NDIM = 8
_DTYPE_RE = re.compile(r"^[<>|=](b1|[iu][1248]|f[248])$")


class DecodeError(ValueError):
    """Bytes that are not a well-formed message of this codec."""


def _encode_default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind not in "biuf":
            raise TypeError(f"cannot send ndarray of dtype {obj.dtype}; use bool, int, uint or float")
        arr = obj if obj.flags.c_contiguous else np.ascontiguousarray(obj)
        # a flat uint8 view exposes the buffer without a copy; msgpack copies it once into the message
        return {NDARRAY_KEY: [arr.dtype.str, list(obj.shape)], "data": arr.reshape(-1).view(np.uint8).data}
    if isinstance(obj, np.generic):
        if obj.dtype.kind not in "biuf":
            raise TypeError(f"cannot send numpy scalar of dtype {obj.dtype}")
        return obj.item()
    if isinstance(obj, tuple):
        return list(obj)
    raise TypeError(f"cannot encode {type(obj).__name__}; send dicts, lists, str, numbers, bytes or ndarrays")


def encode(obj: Any) -> bytes:
    """Serialise a message (dicts, lists, scalars, str, bytes, numeric ndarrays)."""
    return msgpack.packb(obj, default=_encode_default, use_bin_type=True)


def _decode_ndarray(header: Any, data: Any) -> np.ndarray:
    if not isinstance(header, list) or len(header) != 2:
        raise DecodeError("ndarray header must be [dtype, shape]")
    dtype_str, shape = header
    if not isinstance(dtype_str, str) or not _DTYPE_RE.match(dtype_str):
        raise DecodeError(
            f"ndarray dtype {dtype_str!r} refused; allowed: bool, int8-64, uint8-64, float16-64"
        )
    if (
        not isinstance(shape, list)
        or len(shape) > MAX_NDIM
        or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape)
    ):
        raise DecodeError(f"ndarray shape {shape!r} must be a list of at most {MAX_NDIM} non-negative ints")
    if not isinstance(data, bytes):
        raise DecodeError("ndarray data must be bytes")
    dtype = np.dtype(dtype_str)
    n = 1
    for s in shape:
        n *= s
    if n * dtype.itemsize != len(data):
        raise DecodeError(
            f"ndarray of shape {shape} and dtype {dtype_str} needs {n * dtype.itemsize} bytes, got {len(data)}"
        )
    # frombuffer over immutable bytes gives a read-only view; copy so receivers may write in place.
    return np.frombuffer(data, dtype=dtype).reshape(tuple(shape)).copy()


def _object_hook(obj: dict) -> Any:
    if NDARRAY_KEY not in obj:
        return obj
    if len(obj) != 2 or "data" not in obj:
        raise DecodeError(f"a map with {NDARRAY_KEY!r} must have exactly the keys {NDARRAY_KEY!r} and 'data'")
    return _decode_ndarray(obj[NDARRAY_KEY], obj["data"])


def _ext_hook(code: int, payload: bytes) -> Any:
    raise DecodeError(f"msgpack extension types are not used by this protocol (got type {code})")


def decode(data: bytes, max_bytes: int) -> Any:
    """Deserialise one message of at most `max_bytes`. Raises DecodeError with the reason."""
    if len(data) > max_bytes:
        raise DecodeError(f"message of {len(data)} bytes exceeds the limit of {max_bytes} bytes")
    try:
        return msgpack.unpackb(
            data,
            ext_hook=_ext_hook,
            object_hook=_object_hook,
            raw=False,
            strict_map_key=True,
            max_str_len=1 << 20,
            max_bin_len=max_bytes,
            max_array_len=1 << 16,
            max_map_len=1 << 12,
            max_ext_len=max_bytes,
        )
    except DecodeError:
        raise
    except Exception as e:  # msgpack raises several unrelated types on garbage
        raise DecodeError(f"not a valid msgpack message: {type(e).__name__}: {e}") from None
