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
import threading
import time
import uuid
import zlib
from collections.abc import Callable
from typing import Any

try:
    import orjson
except ImportError:  # no wheel for this platform: the standard library's json
    orjson = None  # type: ignore[assignment]

try:
    import zstandard
except ImportError:  # no wheel for this platform: zlib, slower for a larger size
    zstandard = None  # type: ignore[assignment]

SCHEMA_VERSION = 4
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


def schema_version() -> int:
    """The model field's default: a callable, so that a new version needs no
    migration."""
    return SCHEMA_VERSION


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


if orjson is not None:
    # Datetimes and dataclasses go through default=str, as with json.dumps.
    _ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def _json_bytes(value: Any) -> bytes:
    """The compact UTF-8 JSON of ``value``: orjson (an order of magnitude
    faster) where installed, the standard library where it cannot encode the
    value (an int beyond 64 bits, a non-str dict key)."""
    if orjson is not None:
        try:
            return orjson.dumps(value, default=str, option=_ORJSON_OPTIONS)
        except TypeError:
            pass
    return _json(value).encode("utf-8")


# A document with more events is serialised a slice at a time: few encoder
# calls, and the whole JSON text of a large document (up to MAX_EVENTS) is
# never held in memory at once.
_EVENTS_PER_PIECE = 2000
_COMPRESS_EVERY = 1 << 20


def dumps(document: dict[str, Any]) -> bytes:
    """Storage form of a document: its call and return events packed
    (:func:`pack`), its compact JSON compressed (Zstandard, or zlib)."""
    data = dumps_checked(document, None)
    assert data is not None
    return data


# Zstandard at level 3 compresses a trace about seven times faster than zlib
# at level 6, for 7-11 % more bytes: fast enough to run in the request.
ZSTD_LEVEL = 3
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


_per_thread = threading.local()


def new_compressor() -> Any:
    """A streaming compressor (``compress()``, then ``flush()``)."""
    if zstandard is not None:
        # One context per thread, reused: making one costs about as much as
        # compressing a gen-level trace. (Each stream starts afresh.)
        context = getattr(_per_thread, "zstd", None)
        if context is None:
            context = _per_thread.zstd = zstandard.ZstdCompressor(level=ZSTD_LEVEL)
        return context.compressobj()
    return zlib.compressobj(6)


def decompress(data: bytes) -> bytes:
    """A stored document's JSON: Zstandard, or zlib (traces stored before the
    switch to Zstandard, or by an installation without the zstandard package)."""
    if data[:4] == ZSTD_MAGIC:
        if zstandard is None:
            raise ValueError("a Zstandard-compressed document needs the zstandard package")
        decompressor = zstandard.ZstdDecompressor().decompressobj()
        try:
            text = decompressor.decompress(data)
        except zstandard.ZstdError as exc:
            raise ValueError(str(exc)) from None
        if not decompressor.eof:
            raise ValueError("the compressed document is cut short")
        return text
    return zlib.decompress(data)


def dumps_checked(document: dict[str, Any], check: Callable[[str], bool] | None) -> bytes | None:
    """:func:`dumps`, showing ``check`` each piece of JSON text before it is
    compressed; when ``check`` returns True, stops and returns None."""
    document = pack(document)
    if all(
        not isinstance(value, list) or len(value) <= _EVENTS_PER_PIECE
        for value in document.values()
    ):
        # A usual document: one encoder call, one check, one compression.
        text = _json_bytes(document)
        if check is not None and check(text.decode("utf-8")):
            return None
        compressor = new_compressor()
        return compressor.compress(text) + compressor.flush()
    compressor = new_compressor()
    out: list[bytes] = []
    # Text is compressed a megabyte at a time: a usual document in one call,
    # a large one without all its JSON text in memory at once.
    pending: list[bytes] = []
    size = 0

    def write(piece: bytes) -> bool:
        nonlocal size
        if check is not None and check(piece.decode("utf-8")):
            return False
        pending.append(piece)
        size += len(piece)
        if size >= _COMPRESS_EVERY:
            out.append(compressor.compress(b"".join(pending)))
            pending.clear()
            size = 0
        return True

    if not write(b"{"):
        return None
    for index, (key, value) in enumerate(document.items()):
        if not write((b"," if index else b"") + _json_bytes(str(key)) + b":"):
            return None
        if isinstance(value, list) and len(value) > _EVENTS_PER_PIECE:
            if not write(b"["):
                return None
            for start in range(0, len(value), _EVENTS_PER_PIECE):
                piece = _json_bytes(value[start : start + _EVENTS_PER_PIECE])[1:-1]
                if not write((b"," if start else b"") + piece):
                    return None
            if not write(b"]"):
                return None
        elif not write(_json_bytes(value)):
            return None
    write(b"}")
    out.append(compressor.compress(b"".join(pending)))
    out.append(compressor.flush())
    return b"".join(out)


def loads(data: bytes | memoryview) -> dict[str, Any]:
    try:
        text = decompress(bytes(data))
        document = _loads_json(text)
    except (zlib.error, UnicodeDecodeError, ValueError) as exc:
        raise TraceFormatError(f"the stored document is corrupt ({exc})") from None
    return unpack(upgrade(document))


def _loads_json(text: bytes) -> Any:
    if orjson is not None:
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass  # NaN and the like, which json.loads reads: let it decide
    return json.loads(text.decode("utf-8"))


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
    if version == 2:
        # Version 3 changes only the stored form of call and return events
        # (see pack()): a version 2 document is a valid version 3 document.
        document["schema_version"] = version = 3
    if version == 3:
        # Version 4 moves their stored times to one list and stores rows by
        # column (PACKING 2).
        document["schema_version"] = version = 4
    return document


# --- The stored form of call and return events ------------------------------------
#
# They are most of a full-capture trace, and most of their ids, parents,
# depths and times follow from their order. pack() leaves out what follows
# and writes times as microseconds since the event before; unpack() puts it
# all back, so the document read is the document recorded. Both follow
# _Order's rules (pack() inlines the usual case), which is all they need to
# agree on.

_ORDER_KEYS = frozenset(("type", "id", "parent", "depth", "t", "dt"))
_ABSENT: Any = object()
# The key that marks a packed document (and the packing's version).
PACKED = "packed_calls"
# The packing written: 2 moves the times to CALL_TIMES (1 kept them in each
# event as "dt"; traces stored that way are still read) and stores rows by
# column.
PACKING = 2
CALL_TIMES = "call_times"


def _microseconds(t: Any) -> int | None:
    """``t`` (milliseconds) in whole microseconds, if that loses nothing."""
    if type(t) is float or type(t) is int:
        try:
            us = round(t * 1000)
        except (ValueError, OverflowError):  # nan, infinity
            return None
        if us / 1000 == t:
            return us
    return None


class _Order:
    """What the events so far imply for the next call or return."""

    __slots__ = ("open", "depths", "last_id", "clock")

    def __init__(self) -> None:
        self.open: list[Any] = []  # calls not returned yet, innermost last
        self.depths: dict[int, int] = {}
        self.last_id = 0
        self.clock = 0  # microseconds: the time of the last event that had one

    def next_id(self) -> int:
        return self.last_id + 1

    def parent(self) -> Any:
        return self.open[-1] if self.open else None

    def depth(self, parent: Any) -> Any:
        if parent is None:
            return 0
        return self.depths.get(parent, -1) + 1 if type(parent) is int else 0

    def called(self, call_id: Any, parent: Any, depth: Any) -> None:
        if type(call_id) is int:
            self.last_id = call_id
            if type(depth) is int:
                self.depths[call_id] = depth
        opened = self.open
        if parent is None:
            opened.clear()
        elif not opened or opened[-1] != parent:
            # Another thread's call, or one made while a generator was
            # suspended: the chain restarts from its parent.
            if parent in opened:
                del opened[opened.index(parent) + 1 :]
            else:
                opened[:] = [parent]
        opened.append(call_id)

    def returned(self, call_id: Any) -> None:
        opened = self.open
        if opened and opened[-1] == call_id:
            opened.pop()
        elif call_id in opened:
            del opened[opened.index(call_id) :]


def pack(document: dict[str, Any], *, in_place: bool = False) -> dict[str, Any]:
    """The stored form of ``document``: a shallow copy whose call and return
    events leave out what their order implies, their times moved to one list
    (``CALL_TIMES``), and rows are stored by column. ``in_place``: the events
    themselves are changed instead, sparing a copy of each (for a just
    recorded document, which is not read again)."""
    events = document.get("events")
    if PACKED in document or not isinstance(events, list):
        return document
    order = _Order()
    opened = order.open
    depths = order.depths
    # The order's counters are kept in locals (this loop runs in the request),
    # and handed over whenever one of its methods runs.
    last_id = clock = 0
    packed_events: list[Any] = []
    append = packed_events.append
    # Times apart from the events: a run of small numbers compresses to a
    # fraction of what the same numbers cost scattered among the events.
    times: list[int | None] = []
    add_time = times.append
    columns = False
    for event in events:
        kind = event.get("type") if type(event) is dict else None
        if kind == "call":
            packed = event if in_place else event.copy()
            call_id = packed.pop("id", _ABSENT)
            parent = packed.pop("parent", _ABSENT)
            depth = packed.pop("depth", _ABSENT)
            if call_id is _ABSENT or parent is _ABSENT or depth is _ABSENT:
                return _not_packable(document, in_place)
            if (
                call_id == last_id + 1
                and type(call_id) is int
                and type(parent) is int
                and opened
                and parent == opened[-1]
                and type(opened[-1]) is int
                and type(depth) is int
                and depth == depths.get(parent, -1) + 1
            ):
                # The usual call, one level below the innermost open one.
                last_id = call_id
                depths[call_id] = depth
                opened.append(call_id)
            else:
                if not (type(call_id) is int and call_id == last_id + 1):
                    packed["id"] = call_id
                implied = order.parent()
                if not (parent == implied and type(parent) is type(implied)):
                    packed["parent"] = parent
                if not (type(depth) is int and depth == order.depth(parent)):
                    packed["depth"] = depth
                order.last_id = last_id
                order.called(call_id, parent, depth)
                last_id = order.last_id
        elif kind == "return":
            packed = event if in_place else event.copy()
            call_id = packed.pop("id", _ABSENT)
            if call_id is _ABSENT:
                return _not_packable(document, in_place)
            if (
                opened
                and call_id == opened[-1]
                and type(call_id) is int
                and type(opened[-1]) is int
            ):
                opened.pop()
            else:
                packed["id"] = call_id
                order.returned(call_id)
        else:
            us = _microseconds(event.get("t")) if kind is not None else None
            if us is not None:
                clock = us
            if (kind == "orm" or kind == "sql") and _columns_fit(event.get("rows")):
                event = _with_columns(event, in_place)
                columns = True
            append(event)
            continue
        t = packed.pop("t", _ABSENT)
        us = _microseconds(t)
        if us is None:
            if t is not _ABSENT:
                packed["t"] = t
            add_time(None)
        else:
            add_time(us - clock)
            clock = us
        append(packed)
    if not times and not columns:
        return document  # nothing to pack (the events are the same objects)
    stored = document if in_place else {**document, "events": packed_events}
    stored[PACKED] = PACKING
    if times:
        stored[CALL_TIMES] = times
    return stored


def _columns_fit(rows: Any) -> bool:
    """Two rows or more, all lists or tuples of one length."""
    if type(rows) is not list or len(rows) < 2:
        return False
    first = rows[0]
    if type(first) is not list and type(first) is not tuple:
        return False
    width = len(first)
    return width > 0 and all(
        (type(row) is list or type(row) is tuple) and len(row) == width for row in rows
    )


def _with_columns(event: dict[str, Any], in_place: bool) -> dict[str, Any]:
    """The event with its ``rows`` as ``rows_by_column``: the values of a
    column resemble one another (ids, dates, flags), and compress better side
    by side than row by row."""
    columns = [list(column) for column in zip(*event["rows"], strict=True)]
    renamed = _renamed(event, "rows", "rows_by_column", columns)
    if not in_place:
        return renamed
    event.clear()
    event.update(renamed)
    return event


def _renamed(event: dict[str, Any], old: str, new: str, value: Any) -> dict[str, Any]:
    """A copy of ``event`` with ``new`` (holding ``value``) in the place of
    ``old`` among its keys, so that a document reads back key for key."""
    return {
        (new if key == old else key): (value if key == old else item) for key, item in event.items()
    }


def _not_packable(document: dict[str, Any], in_place: bool) -> dict[str, Any]:
    """A call or return without its id, parent or depth was not written by
    the recorder: such a document is stored as it is."""
    if in_place:  # half changed already
        raise TraceFormatError("a call or return event lacks its id, parent or depth")
    return document


def _with_rows(event: dict[str, Any]) -> dict[str, Any]:
    columns = event["rows_by_column"]
    if (
        type(columns) is not list
        or not columns
        or not all(type(column) is list and len(column) == len(columns[0]) for column in columns)
    ):
        raise TraceFormatError("the document's rows cannot be read (not columns of one length)")
    rows = [list(row) for row in zip(*columns, strict=True)]
    return _renamed(event, "rows_by_column", "rows", rows)


def unpack(document: dict[str, Any]) -> dict[str, Any]:
    """Put back in place what :func:`pack` left out."""
    packing = document.pop(PACKED, None)
    if packing is None:
        return document
    times = document.pop(CALL_TIMES, None)
    events = document.get("events")
    if not isinstance(events, list):
        raise TraceFormatError("the document's call events cannot be read (no events)")
    if packing != 1 and times is None:
        times = []
    if times is not None and not isinstance(times, list):
        raise TraceFormatError("the document's call events cannot be read (no times)")
    left = iter(times or ())
    next_time = left.__next__
    order = _Order()
    try:
        for index, event in enumerate(events):
            kind = event.get("type") if type(event) is dict else None
            if kind == "call":
                call_id = event["id"] if "id" in event else order.next_id()
                parent = event["parent"] if "parent" in event else order.parent()
                depth = event["depth"] if "depth" in event else order.depth(parent)
                full: dict[str, Any] = {
                    "type": "call",
                    "id": call_id,
                    "parent": parent,
                    "depth": depth,
                }
                order.called(call_id, parent, depth)
            elif kind == "return":
                call_id = event["id"] if "id" in event else order.parent()
                full = {"type": "return", "id": call_id}
                order.returned(call_id)
            else:
                us = _microseconds(event.get("t")) if kind is not None else None
                if us is not None:
                    order.clock = us
                if kind is not None and "rows_by_column" in event:
                    events[index] = _with_rows(event)
                continue
            for key, value in event.items():
                if key not in _ORDER_KEYS:
                    full[key] = value
            dt = event["dt"] if "dt" in event else next_time() if times is not None else None
            if dt is not None:
                order.clock += dt
                full["t"] = order.clock / 1000
            elif "t" in event:
                full["t"] = event["t"]
                us = _microseconds(event["t"])
                if us is not None:
                    order.clock = us
            events[index] = full
    except TypeError as exc:  # an unhashable id, a dt that is not a number...
        raise TraceFormatError(f"the document's call events cannot be read ({exc})") from None
    except StopIteration:
        raise TraceFormatError(
            "the document's call events cannot be read (too few times)"
        ) from None
    if times is not None and next(left, _ABSENT) is not _ABSENT:
        raise TraceFormatError("the document's call events cannot be read (too many times)")
    return document
