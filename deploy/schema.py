"""The versioned message schema of the policy link (requests, replies, error codes).

Request  {"v": SCHEMA_VERSION, "type": "hello" | "infer" | "ping" | "health", "id": int | str,
          "t_client": float (client wall clock, s), "obs": <observation batch, only for "infer">}
Reply    {"v", "type", "id", "t_client" (echoed), "ok": True, "timing": {...}, + type-specific fields}
Error    {"v", "type": "error", "id" (echoed when readable), "ok": False,
          "error": {"code": ErrorCode, "message": str}}

The observation batch is exactly `vla.protocol`'s batch (leading batch dimension). Server timing:
`t_recv`/`t_send` (server wall clock, s), `decode_ms`, `infer_ms`, `server_ms` (receive to reply).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

PROTOCOL_NAME = "pion-vla-zmq"
SCHEMA_VERSION = 1
REQUEST_TYPES = ("hello", "infer", "ping", "health")
MAX_ID_LEN = 128
MAX_QUOTE_CHARS = 64  # at most this much of any peer-supplied value is quoted back in an error
MAX_ERROR_CHARS = 512  # hard cap on an error reply's message


class ErrorCode(StrEnum):
    MALFORMED = "malformed"  # bytes are not a message of this codec
    TOO_LARGE = "too_large"  # payload over the server's max_message_bytes
    BAD_VERSION = "bad_version"  # schema version the server does not speak
    BAD_REQUEST = "bad_request"  # missing or mistyped envelope field, unknown type
    BAD_OBSERVATION = "bad_observation"  # batch does not match the policy spec (keys, shapes, dtypes, NaN)
    INFERENCE_FAILED = "inference_failed"  # the policy raised
    BAD_ACTION = "bad_action"  # the policy produced a chunk that violates its spec (shape, NaN/inf)
    SHUTTING_DOWN = "shutting_down"
    BUSY = "busy"  # this client already has the most requests the server queues per client; retry later
    RATE_LIMITED = "rate_limited"  # this client sent more requests or bytes per second than it may
    INTERNAL = "internal"  # a server bug; the server keeps serving


class RequestError(Exception):
    """A request the server refuses; becomes an error reply."""

    def __init__(self, code: ErrorCode, message: str, request_id: Any = None):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.request_id = request_id


def brief(value: Any, limit: int = MAX_QUOTE_CHARS) -> str:
    """A bounded description of a peer-supplied value for an error message. Never a full `repr()`:
    containers are described by type and length only, strings and bytes are cut to `limit` characters,
    so the cost of building it and the size of the reply do not grow with the attacker's input."""
    if value is None or isinstance(value, bool | int | float):
        text = repr(value)
    elif isinstance(value, str):
        text = repr(value[:limit]) + (f"... ({len(value)} chars)" if len(value) > limit else "")
    elif isinstance(value, bytes | bytearray | memoryview):
        text = f"<{len(value)} bytes>"
    elif isinstance(value, list | tuple):
        text = f"<array of {len(value)} items>"
    elif isinstance(value, dict):
        text = f"<map of {len(value)} keys>"
    elif hasattr(value, "dtype") and hasattr(value, "shape"):
        text = f"<ndarray {value.dtype} {tuple(value.shape)}>"
    else:
        text = f"<{type(value).__name__}>"
    return text[: limit + 24]


def make_request(kind: str, request_id: int | str, obs: Mapping[str, Any] | None = None) -> dict[str, Any]:
    msg: dict[str, Any] = {"v": SCHEMA_VERSION, "type": kind, "id": request_id, "t_client": time.time()}
    if obs is not None:
        msg["obs"] = dict(obs)
    return msg


def parse_request(msg: Any) -> tuple[str, Any, float]:
    """Check the envelope of a decoded request; return (type, id, t_client). Raises RequestError."""
    if not isinstance(msg, dict):
        raise RequestError(ErrorCode.BAD_REQUEST, f"request must be a map, got {type(msg).__name__}")
    rid = msg.get("id")
    valid_id = (isinstance(rid, int) and not isinstance(rid, bool)) or (
        isinstance(rid, str) and len(rid) <= MAX_ID_LEN
    )
    v = msg.get("v")
    if type(v) is not int or v != SCHEMA_VERSION:  # True and 1.0 compare equal to 1 but are not versions
        raise RequestError(
            ErrorCode.BAD_VERSION,
            f"schema version {brief(v)} not supported; this server speaks v={SCHEMA_VERSION} (an int; "
            "upgrade the client)",
            rid if valid_id else None,
        )
    if not valid_id:
        raise RequestError(ErrorCode.BAD_REQUEST, f"'id' must be an int or a string of <= {MAX_ID_LEN} chars")
    kind = msg.get("type")
    if kind not in REQUEST_TYPES:
        raise RequestError(
            ErrorCode.BAD_REQUEST, f"'type' must be one of {list(REQUEST_TYPES)}, got {brief(kind)}", rid
        )
    t_client = msg.get("t_client")
    if not isinstance(t_client, int | float) or isinstance(t_client, bool) or not math.isfinite(t_client):
        raise RequestError(
            ErrorCode.BAD_REQUEST, "'t_client' (client wall-clock seconds) must be a finite number", rid
        )
    if kind == "infer" and not isinstance(msg.get("obs"), dict):
        raise RequestError(ErrorCode.BAD_REQUEST, "'infer' needs an 'obs' map (the observation batch)", rid)
    return kind, rid, float(t_client)


def ok_reply(
    kind: str, request_id: Any, t_client: float | None, timing: dict[str, float], **fields: Any
) -> dict:
    return {
        "v": SCHEMA_VERSION,
        "type": kind,
        "id": request_id,
        "t_client": t_client,
        "ok": True,
        "timing": timing,
        **fields,
    }


def error_reply(code: ErrorCode, message: str, request_id: Any = None) -> dict[str, Any]:
    return {
        "v": SCHEMA_VERSION,
        "type": "error",
        "id": request_id,
        "ok": False,
        "error": {"code": str(code), "message": message[:MAX_ERROR_CHARS]},
    }
