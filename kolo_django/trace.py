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
from typing import Any

SCHEMA_VERSION = 1
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


def encode_value(value: Any) -> Any:
    """A JSON-safe form of a Python value read from a model field or a row."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return {"$t": "float", "v": repr(value)}
        return value
    if isinstance(value, decimal.Decimal):
        return {"$t": "decimal", "v": str(value)}
    if isinstance(value, dt.datetime):
        return {"$t": "datetime", "v": value.isoformat()}
    if isinstance(value, dt.date):
        return {"$t": "date", "v": value.isoformat()}
    if isinstance(value, dt.time):
        return {"$t": "time", "v": value.isoformat()}
    if isinstance(value, dt.timedelta):
        return {"$t": "duration", "v": value // dt.timedelta(microseconds=1)}
    if isinstance(value, uuid.UUID):
        return {"$t": "uuid", "v": str(value)}
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"$t": "bytes", "v": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, (list, tuple)):
        return [encode_value(item) for item in value]
    if isinstance(value, dict):
        encoded = {str(k): encode_value(v) for k, v in value.items()}
        # A dict that looks like a tag is wrapped so decoding stays unambiguous.
        return {"$t": "dict", "v": encoded} if "$t" in encoded else encoded
    return {"$t": "repr", "v": f"{type(value).__name__}: {str(value)[:200]}"}


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
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


def dumps(document: dict[str, Any]) -> bytes:
    """Compressed storage form of a document: its compact JSON, zlib-compressed.

    Written a top-level key (and an event) at a time into the compressor, so the
    whole JSON text of a large document is never held in memory at once."""
    compressor = zlib.compressobj(6)
    out: list[bytes] = []

    def write(text: str) -> None:
        out.append(compressor.compress(text.encode("utf-8")))

    write("{")
    for index, (key, value) in enumerate(document.items()):
        write(("," if index else "") + _json(str(key)) + ":")
        if isinstance(value, list) and len(value) > 100:
            write("[")
            for position, item in enumerate(value):
                write(("," if position else "") + _json(item))
            write("]")
        else:
            write(_json(value))
    write("}")
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
    return document
