"""Wire encoding for the policy link: msgpack with numpy arrays as tagged maps. Never pickle.

An ndarray travels as the map {"__ndarray__": [dtype, shape], "data": <raw bytes>} (the key
"__ndarray__" is reserved). Only plain numeric dtypes (bool, signed/unsigned int, float) are accepted
on decode, so a hostile peer cannot make us build object, structured or void arrays; the byte count
must match dtype x shape, and every size is bounded before any allocation. Before msgpack builds any
Python object, a header-only scan counts the objects and the nesting depth of the message and refuses
more than `max_objects` / `MAX_DEPTH` (an 8 MiB message could otherwise hold ~8 M objects). Decoded
arrays are writable copies owned by the receiver. Error messages quote peer input only through
`schema.brief` (bounded).
"""

from __future__ import annotations

import re
from typing import Any

import msgpack
import numpy as np

from deploy.schema import brief

NDARRAY_KEY = "__ndarray__"
MAX_NDIM = 8
MAX_OBJECTS = 4096  # a DROID request holds ~50 msgpack objects; a batch of B adds ~B
MAX_DEPTH = 16  # a request nests 4 deep (request / obs / ndarray map / shape list)
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
            f"ndarray dtype {brief(dtype_str)} refused; allowed: bool, int8-64, uint8-64, float16-64"
        )
    if (
        not isinstance(shape, list)
        or len(shape) > MAX_NDIM
        or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape)
    ):
        raise DecodeError(
            f"ndarray shape {brief(shape)} must be a list of at most {MAX_NDIM} non-negative ints"
        )
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


# msgpack first bytes -> (kind, size of the length field or payload): kind "c" container with a length
# field of n bytes (array), "m" the same for maps, "s" a str/bin with an n-byte length, "f" fixed n-byte payload
_HEADERS: dict[int, tuple[str, int]] = {
    0xC0: ("f", 0), 0xC2: ("f", 0), 0xC3: ("f", 0),
    0xC4: ("s", 1), 0xC5: ("s", 2), 0xC6: ("s", 4), 0xD9: ("s", 1), 0xDA: ("s", 2), 0xDB: ("s", 4),
    0xCA: ("f", 4), 0xCB: ("f", 8), 0xCC: ("f", 1), 0xCD: ("f", 2), 0xCE: ("f", 4), 0xCF: ("f", 8),
    0xD0: ("f", 1), 0xD1: ("f", 2), 0xD2: ("f", 4), 0xD3: ("f", 8),
    0xDC: ("c", 2), 0xDD: ("c", 4), 0xDE: ("m", 2), 0xDF: ("m", 4),
}  # fmt: skip


def count_objects(
    data: bytes | memoryview, max_objects: int = MAX_OBJECTS, max_depth: int = MAX_DEPTH
) -> int:
    """Walk the msgpack headers of `data` (skipping str/bin payloads) without building anything; return the
    number of objects. Raises DecodeError past `max_objects` objects or `max_depth` nesting, so the work is
    bounded by the limits, not by the message."""
    view = memoryview(data).cast("B")
    end, pos, count = len(view), 0, 0
    pending = [1]  # objects still expected at each open nesting level
    while pending:
        if pending[-1] == 0:
            pending.pop()
            continue
        pending[-1] -= 1
        count += 1
        if count > max_objects:
            raise DecodeError(f"message holds more than {max_objects} objects")
        if pos >= end:
            raise DecodeError("not a valid msgpack message: truncated")
        b = view[pos]
        pos += 1
        if b <= 0x7F or b >= 0xE0:
            continue
        if 0x80 <= b <= 0x9F:
            n = (b & 0x0F) * 2 if b <= 0x8F else b & 0x0F
        elif 0xA0 <= b <= 0xBF:
            pos += b & 0x1F
            continue
        else:
            kind, width = _HEADERS.get(b, ("x", 0))
            if kind == "x":
                if 0xC7 <= b <= 0xC9 or 0xD4 <= b <= 0xD8:
                    raise DecodeError("msgpack extension types are not used by this protocol")
                raise DecodeError(f"not a valid msgpack message: type byte 0x{b:02x}")
            if kind == "f":
                pos += width
                continue
            n = int.from_bytes(view[pos : pos + width], "big")
            pos += width
            if kind == "s":
                pos += n
                continue
            n = n * 2 if kind == "m" else n
        if n:
            if len(pending) > max_depth:
                raise DecodeError(f"message nests deeper than {max_depth} levels")
            pending.append(n)
    if pos != end:
        raise DecodeError(
            "not a valid msgpack message: truncated"
            if pos > end
            else f"{end - pos} bytes of extra data after the message"
        )
    return count


def decode(data: bytes, max_bytes: int, max_objects: int = MAX_OBJECTS) -> Any:
    """Deserialise one message of at most `max_bytes` and `max_objects` objects. Raises DecodeError."""
    if len(data) > max_bytes:
        raise DecodeError(f"message of {len(data)} bytes exceeds the limit of {max_bytes} bytes")
    count_objects(data, max_objects)
    try:
        return msgpack.unpackb(
            data,
            ext_hook=_ext_hook,
            object_hook=_object_hook,
            raw=False,
            strict_map_key=True,
            max_str_len=1 << 20,
            max_bin_len=max_bytes,
            max_array_len=max_objects,
            max_map_len=max_objects,
            max_ext_len=max_bytes,
        )
    except DecodeError:
        raise
    except Exception as e:  # msgpack raises several unrelated types on garbage
        raise DecodeError(f"not a valid msgpack message: {type(e).__name__}: {e}") from None
