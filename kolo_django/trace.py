"""The Trace document: the only contract between recording and generation.

A document is plain JSON data. Values that JSON cannot carry (Decimal,
datetimes, UUIDs, bytes...) are tagged ``{"$t": kind, "v": text}`` by
:func:`encode_value` and restored by :func:`decode_value`. The format is
described field by field in docs/trace-format.md.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
import os
import re
import time
import uuid
import zlib
from collections.abc import Callable
from typing import Any

SCHEMA_VERSION = 2
TRACE_ID_RE = re.compile(r"^trc_[0-9A-HJKMNP-TV-Z]{26}$")
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


class TraceFormatError(ValueError):
    """A stored document that cannot be read."""


def new_trace_id(timestamp_ms: int | None = None) -> str:
    """``trc_`` + a ULID: 48 bits of milliseconds, 80 random bits, Crockford base32."""
    if timestamp_ms is None:
        timestamp_ms = time.time_ns() // 1_000_000
    value = (timestamp_ms << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "trc_" + "".join(reversed(chars))


def is_trace_id(value: str) -> bool:
    return bool(TRACE_ID_RE.match(value))


_AS_IS = frozenset((type(None), bool, int, str))
# Returned by encode_known() for a value of a type not listed in encode_value().
UNKNOWN: Any = object()


def encode_value(value: Any) -> Any:
    """A JSON-safe form of a Python value read from a model field or a row."""
    if type(value) in _AS_IS:
        return value
    encoded = encode_known(value)
    if encoded is UNKNOWN:
        return {"$t": "repr", "v": f"{type(value).__name__}: {str(value)[:200]}"}
    return encoded


def _encode_float(value: float) -> Any:
    if value != value or value in (float("inf"), float("-inf")):
        return {"$t": "float", "v": repr(value)}
    return value


def _encode_dict(value: dict[Any, Any]) -> Any:
    encoded = {str(k): encode_value(v) for k, v in value.items()}
    # A dict that looks like a tag is wrapped so decoding stays unambiguous.
    return {"$t": "dict", "v": encoded} if "$t" in encoded else encoded


def _encode_bytes(value: Any) -> Any:
    return {"$t": "bytes", "v": base64.b64encode(bytes(value)).decode("ascii")}


# The exact types seen in rows, answered without the isinstance() chain.
_ENCODERS: dict[type, Callable[[Any], Any]] = {
    float: _encode_float,
    decimal.Decimal: lambda v: {"$t": "decimal", "v": str(v)},
    dt.datetime: lambda v: {"$t": "datetime", "v": v.isoformat()},
    dt.date: lambda v: {"$t": "date", "v": v.isoformat()},
    dt.time: lambda v: {"$t": "time", "v": v.isoformat()},
    dt.timedelta: lambda v: {"$t": "duration", "v": v // dt.timedelta(microseconds=1)},
    uuid.UUID: lambda v: {"$t": "uuid", "v": str(v)},
    bytes: _encode_bytes,
    bytearray: _encode_bytes,
    memoryview: _encode_bytes,
    list: lambda v: [encode_value(item) for item in v],
    tuple: lambda v: [encode_value(item) for item in v],
    dict: _encode_dict,
}


def encode_known(value: Any) -> Any:
    """Like :func:`encode_value`, but ``UNKNOWN`` instead of a repr tag, so a
    caller with a better string form does not run ``str()`` twice."""
    encoder = _ENCODERS.get(type(value))
    if encoder is not None:
        return encoder(value)
    if value is None or isinstance(value, (bool, int, str)):
        return value
    # A subclass (a str-based enum, a datetime subclass...): the first listed
    # base it derives from; datetime is listed before date.
    for cls, encoder in _ENCODERS.items():
        if isinstance(value, cls):
            return encoder(value)
    return UNKNOWN


def decode_value(value: Any) -> Any:
    if isinstance(value, list):
        return [decode_value(item) for item in value]
    if not isinstance(value, dict):
        return value
    tag = value.get("$t")
    if tag is None:
        return {k: decode_value(v) for k, v in value.items()}
    raw = value.get("v")
    if tag == "decimal":
        return decimal.Decimal(raw)
    if tag == "datetime":
        return dt.datetime.fromisoformat(raw)
    if tag == "date":
        return dt.date.fromisoformat(raw)
    if tag == "time":
        return dt.time.fromisoformat(raw)
    if tag == "duration":
        return dt.timedelta(microseconds=raw)
    if tag == "uuid":
        return uuid.UUID(raw)
    if tag == "bytes":
        return base64.b64decode(raw)
    if tag == "float":
        return float(raw)
    if tag == "dict":
        return {k: decode_value(v) for k, v in raw.items()}
    return raw


def _json(value: Any) -> str:
    # A document is a tree built from encoded values: the cycle check (a set
    # of every container's id) only costs.
    return json.dumps(
        value, separators=(",", ":"), ensure_ascii=False, default=str, check_circular=False
    )


# Events serialised per slice: few json.dumps() calls, and the whole JSON text
# of a large document is never held in memory at once.
_EVENTS_PER_PIECE = 500
_COMPRESS_EVERY = 1 << 20


def dumps(document: dict[str, Any]) -> bytes:
    """Compressed storage form of a document: its compact JSON, zlib-compressed."""
    data = dumps_checked(document, None)
    assert data is not None
    return data


def dumps_checked(document: dict[str, Any], check: Callable[[str], bool] | None) -> bytes | None:
    """:func:`dumps`, showing ``check`` each piece of JSON text before it is
    compressed; when ``check`` returns True, stops and returns None."""
    compressor = zlib.compressobj(6)
    out: list[bytes] = []
    # Text is compressed a megabyte at a time: a usual document in one call
    # (zlib runs without the GIL, and each call hands it over), a large one
    # without all its JSON text in memory at once.
    pending: list[str] = []
    size = 0

    def write(text: str) -> bool:
        nonlocal size
        if check is not None and check(text):
            return False
        pending.append(text)
        size += len(text)
        if size >= _COMPRESS_EVERY:
            out.append(compressor.compress("".join(pending).encode("utf-8")))
            pending.clear()
            size = 0
        return True

    if not write("{"):
        return None
    for index, (key, value) in enumerate(document.items()):
        if not write(("," if index else "") + _json(str(key)) + ":"):
            return None
        if isinstance(value, list) and len(value) > _EVENTS_PER_PIECE:
            if not write("["):
                return None
            for start in range(0, len(value), _EVENTS_PER_PIECE):
                text = _json(value[start : start + _EVENTS_PER_PIECE])[1:-1]
                if not write(("," if start else "") + text):
                    return None
            if not write("]"):
                return None
        elif not write(_json(value)):
            return None
    write("}")
    out.append(compressor.compress("".join(pending).encode("utf-8")))
    out.append(compressor.flush())
    return b"".join(out)


def loads(data: bytes | memoryview) -> dict[str, Any]:
    try:
        document = json.loads(zlib.decompress(bytes(data)).decode("utf-8"))
    except (zlib.error, UnicodeDecodeError, ValueError) as exc:
        raise TraceFormatError(f"the stored document is corrupt ({exc})") from None
    return upgrade(document)


def upgrade(document: Any) -> dict[str, Any]:
    """Bring an older document up to SCHEMA_VERSION; refuse newer ones."""
    if not isinstance(document, dict) or not isinstance(document.get("schema_version"), int):
        raise TraceFormatError("the document has no schema_version")
    version = document["schema_version"]
    if version > SCHEMA_VERSION:
        raise TraceFormatError(
            f"the document has schema version {version}, newer than this "
            f"kolo_django understands ({SCHEMA_VERSION}); upgrade kolo_django"
        )
    if version < 1:
        raise TraceFormatError(f"unknown schema version {version}")
    if version == 1:
        # Version 2 only stores less (rows of model queries once, in orm
        # events; a row read again is not repeated as backing; locals once per
        # call): every version 1 document is a valid version 2 document.
        document["schema_version"] = version = 2
    return document
