"""Storing documents: summary columns, value encoding, retention."""

from __future__ import annotations

import copy
import datetime as dt
import decimal
import json
import math
import time
import uuid
import zlib
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from kolo_django import storage, trace


def document(
    path: str = "/x/", age: dt.timedelta = dt.timedelta(0), **extra: Any
) -> dict[str, Any]:
    started = timezone.now() - age
    return {
        "schema_version": trace.SCHEMA_VERSION,
        "id": trace.new_trace_id(int(started.timestamp() * 1000)),
        "started_at": trace.encode_value(started),
        "duration_ms": 3.25,
        "request": {"method": "POST", "path": path, "resolver": {"view_name": "todo-list"}},
        "response": {"status_code": 201},
        "events": [{"type": "sql"}, {"type": "orm"}, {"type": "sql"}, {"type": "log"}],
        **extra,
    }


def test_summary_columns(traces: Any) -> None:
    doc = document()
    obj = storage.save_document(doc)
    stored = traces.get()
    assert (stored.method, stored.path, stored.status_code, stored.view_name) == (
        "POST",
        "/x/",
        201,
        "todo-list",
    )
    assert (stored.query_count, stored.event_count, stored.duration_ms) == (2, 4, 3.25)
    assert stored.created_at == trace.decode_value(doc["started_at"])
    assert stored.size == len(bytes(stored.document)) == obj.size
    assert stored.load_document() == doc
    assert storage.load(doc["id"]) == doc


def test_lookup_errors(traces: Any) -> None:
    with pytest.raises(LookupError, match="not a trace id"):
        storage.get_trace("nope")
    with pytest.raises(LookupError, match="no trace with id"):
        storage.get_trace(trace.new_trace_id())


def test_corrupt_and_newer_documents(traces: Any) -> None:
    obj = storage.save_document(document())
    traces.filter(pk=obj.pk).update(document=b"not zlib")
    with pytest.raises(trace.TraceFormatError, match="corrupt"):
        storage.load(obj.pk)
    newer = document()
    newer["schema_version"] = trace.SCHEMA_VERSION + 1
    with pytest.raises(trace.TraceFormatError, match="newer"):
        trace.loads(trace.dumps(newer))


@pytest.mark.parametrize(
    "value",
    [
        decimal.Decimal("12.50"),
        dt.datetime(2025, 3, 3, 9, 30, 1, 5, tzinfo=dt.timezone.utc),
        dt.datetime(2025, 3, 3, 9, 30),
        dt.date(2025, 3, 3),
        dt.time(9, 30, 15),
        dt.timedelta(days=2, microseconds=7),
        uuid.UUID("6f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f"),
        b"\x00\xffbinary",
        float("inf"),
        {"$t": "not a tag", "v": [1, {"$t": "x"}]},
        [1, "two", None, True, 2.5, {"nested": decimal.Decimal("1")}],
    ],
)
def test_values_survive_the_document(value: Any) -> None:
    encoded = trace.encode_value(value)
    restored = trace.decode_value(
        trace.loads(trace.dumps({"schema_version": 1, "v": encoded}))["v"]
    )
    assert restored == value
    assert type(restored) is type(value)


# A usual document is written in one piece; one with more events, a slice at a time.
SIZES = [1200, 2 * trace._EVENTS_PER_PIECE + 1]


@pytest.mark.parametrize("events", SIZES)
@pytest.mark.parametrize("encoder", ["orjson", "json"])
def test_both_encoders_write_the_same_document(
    encoder: str, events: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    if encoder == "json":
        monkeypatch.setattr(trace, "orjson", None)
    doc = document()
    doc["events"] = [{"type": "call", "id": n, "text": "é ✓ \u2028"} for n in range(events)]
    doc["odd"] = {
        "big": 2**70,  # beyond orjson's 64 bits
        "when": dt.datetime(2025, 3, 3, 9, 30),  # not encoded: default=str, as json.dumps
    }
    data = trace.dumps(doc)
    text = trace.decompress(data).decode("utf-8")
    assert '"big":1180591620717411303424' in text
    assert '"when":"2025-03-03 09:30:00"' in text
    assert text == trace._json(doc)
    loaded = trace.loads(data)
    last = events - 1
    assert loaded["events"][last] == {"type": "call", "id": last, "text": "é ✓ \u2028"}


@pytest.mark.parametrize("events", SIZES)
def test_the_check_sees_every_piece_of_the_text(events: int) -> None:
    doc = document()
    doc["events"] = [{"type": "log", "message": f"line {n}"} for n in range(events)]
    seen: list[str] = []
    assert trace.dumps_checked(doc, lambda text: bool(seen.append(text))) == trace.dumps(doc)
    assert "".join(seen) == trace._json(doc)
    doc["events"][-1]["message"] = "the needle"
    assert trace.dumps_checked(doc, lambda text: "needle" in text) is None


def test_a_thread_reuses_its_compression_context() -> None:
    pytest.importorskip("zstandard")
    first = trace.new_compressor()
    first.compress(b"abandoned half-way " * 1000)  # a check stopped this one
    doc = document(note="after")
    assert trace.loads(trace.dumps(doc)) == doc
    assert trace._per_thread.zstd is not None


def test_documents_are_stored_zstandard_compressed() -> None:
    pytest.importorskip("zstandard")
    doc = document(note="x" * 5000)
    data = trace.dumps(doc)
    assert data[:4] == trace.ZSTD_MAGIC
    assert len(data) < 1000
    assert trace.loads(data) == doc
    with pytest.raises(trace.TraceFormatError, match="cut short"):
        trace.loads(data[:-4])
    with pytest.raises(trace.TraceFormatError, match="corrupt"):
        trace.loads(trace.ZSTD_MAGIC + b"not a frame")


def test_zlib_documents_still_load(monkeypatch: pytest.MonkeyPatch) -> None:
    """Traces stored by an earlier version, or where zstandard has no wheel."""
    doc = document(note="zlib")
    assert trace.loads(zlib.compress(trace._json(doc).encode())) == doc
    monkeypatch.setattr(trace, "zstandard", None)
    data = trace.dumps(doc)
    assert zlib.decompress(data) == trace._json(doc).encode()
    assert trace.loads(data) == doc


def test_documents_with_nan_tokens_still_load() -> None:
    # json.dumps writes a bare float NaN as NaN, which orjson does not read.
    data = zlib.compress(b'{"schema_version":2,"x":NaN}')
    assert math.isnan(trace.loads(data)["x"])


def test_orjson_is_used_where_installed() -> None:
    pytest.importorskip("orjson")
    assert trace._json_bytes({"a": [1, 2]}) == b'{"a":[1,2]}'
    assert trace.orjson is not None


def test_nan_survives() -> None:
    assert math.isnan(trace.decode_value(trace.encode_value(float("nan"))))


def test_prune_keeps_the_newest(traces: Any) -> None:
    docs = [document(path=f"/{n}/", age=dt.timedelta(minutes=10 - n)) for n in range(10)]
    for doc in docs:
        storage.save_document(doc)
    assert storage.prune(max_traces=4, max_age_days=None, batch_size=3) == 6
    assert sorted(t.path for t in traces.all()) == sorted(d["request"]["path"] for d in docs[-4:])


def test_prune_with_equal_timestamps(traces: Any) -> None:
    # Several traces in the same millisecond: the id breaks the tie.
    stamp = timezone.now()
    ids = []
    for n in range(5):
        doc = document(path=f"/{n}/")
        doc["started_at"] = trace.encode_value(stamp)
        ids.append(storage.save_document(doc).id)
    storage.prune(max_traces=2, max_age_days=None)
    assert sorted(traces.values_list("id", flat=True)) == sorted(ids)[-2:]


def test_prune_by_age(traces: Any) -> None:
    storage.save_document(document(path="/old/", age=dt.timedelta(days=3)))
    storage.save_document(document(path="/new/", age=dt.timedelta(hours=1)))
    assert storage.prune(max_traces=None, max_age_days=2) == 1
    assert [t.path for t in traces.all()] == ["/new/"]


def test_save_runs_in_its_own_transaction(traces: Any) -> None:
    with CaptureQueriesContext(connection) as captured:
        storage.save_document(document())
    statements = [q["sql"].split()[0].upper() for q in captured.captured_queries]
    # Inside the test's transaction the atomic block is a savepoint around the insert.
    assert statements == ["SAVEPOINT", "INSERT", "RELEASE"]


def _counted_batches(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The sizes of the batches the writer has inserted and committed."""
    batches: list[int] = []
    insert_rows = storage.insert_rows

    def counted(rows: list[Any]) -> None:
        insert_rows(rows)
        batches.append(len(rows))

    monkeypatch.setattr(storage, "insert_rows", counted)
    return batches


@pytest.mark.django_db(transaction=True)
def test_writer_thread_stores_redacted_traces_in_batches(
    monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    """Outside tests, recorded traces go to a writer thread; flush() waits for it."""
    from kolo_django.models import Trace

    monkeypatch.setattr(storage, "is_test_run", lambda: False)
    batches = _counted_batches(monkeypatch)
    secret = "s3cr3t-value-123456"
    docs = [document(path=f"/w/{i}/", note=f"token {secret}") for i in range(30)]
    for doc in docs:
        storage.store_recorded(doc, {secret})
    assert storage.flush(timeout=30)
    stored = list(Trace.objects.order_by("path"))
    assert sorted(t.path for t in stored) == sorted(d["request"]["path"] for d in docs)
    for obj in stored:
        assert obj.load_document()["note"] == "token [REDACTED]"
    # The writer waits for a batch to fill instead of committing each trace.
    assert sum(batches) == 30 and len(batches) <= 5 and max(batches) == storage.BATCH


@pytest.mark.django_db(transaction=True)
def test_the_request_hands_the_writer_a_finished_row(monkeypatch: pytest.MonkeyPatch) -> None:
    """Redacted, serialised and compressed before the writer sees it: the
    document's objects do not wait in the queue."""
    monkeypatch.setattr(storage, "is_test_run", lambda: False)
    _linger(monkeypatch, 60.0)
    queued: list[Any] = []
    submit = storage._writer.submit
    monkeypatch.setattr(storage._writer, "submit", lambda row: (queued.append(row), submit(row))[1])
    secret = "s3cr3t-value-654321"
    storage.store_recorded(document(path="/handed/", note=f"token {secret}"), {secret})
    (row,) = queued
    assert isinstance(row.document, bytes) and row.path == "/handed/"
    assert secret.encode() not in trace.decompress(row.document)
    assert storage.flush(timeout=20)


@pytest.mark.django_db(transaction=True)
def test_flush_does_not_wait_for_a_batch_to_fill(monkeypatch: pytest.MonkeyPatch) -> None:
    from kolo_django.models import Trace

    monkeypatch.setattr(storage, "is_test_run", lambda: False)
    # A writer that would linger for a minute: flush() tells it to write now.
    _linger(monkeypatch, 60.0)
    storage.store_recorded(document(path="/one/"), set())
    assert storage.flush(timeout=20)
    assert [t.path for t in Trace.objects.all()] == ["/one/"]


@pytest.mark.django_db(transaction=True)
def test_requests_do_not_wake_the_writer_for_every_trace(monkeypatch: pytest.MonkeyPatch) -> None:
    """A thread woken per request hands the GIL over and back each time: the
    writer is woken by a batch's first trace, then by a full batch or flush()."""
    from kolo_django.models import Trace

    monkeypatch.setattr(storage, "is_test_run", lambda: False)
    _linger(monkeypatch, 60.0)
    batches = _counted_batches(monkeypatch)
    assert storage.flush(timeout=20)
    writer = storage._writer
    notified: list[int] = []
    notify = writer.wake.notify
    monkeypatch.setattr(writer.wake, "notify", lambda n=1: (notified.append(n), notify(n)))

    for i in range(storage.BATCH - 1):
        storage.store_recorded(document(path=f"/first/{i}/"), set())
    assert len(notified) == 1  # the first trace of the batch only
    storage.store_recorded(document(path="/first/last/"), set())
    assert len(notified) == 2  # the batch is full: written without lingering
    deadline = time.monotonic() + 20
    while not batches and time.monotonic() < deadline:
        time.sleep(0.01)
    for i in range(3):
        storage.store_recorded(document(path=f"/second/{i}/"), set())
    assert len(notified) == 3
    assert storage.flush(timeout=20)
    # flush() hurries the lingering writer, then asks it to close its connection.
    assert len(notified) == 5
    assert batches == [storage.BATCH, 3]
    assert Trace.objects.count() == storage.BATCH + 3


def _wait_for(condition: Any, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)


@pytest.mark.django_db(transaction=True)
def test_the_writer_stores_a_lone_trace_once_no_other_comes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A developer's single request: stored LINGER after it, not MAX_LINGER."""
    from kolo_django.models import Trace

    monkeypatch.setattr(storage, "is_test_run", lambda: False)
    assert storage.flush(timeout=20)
    monkeypatch.setattr(storage, "LINGER", 0.2)
    monkeypatch.setattr(storage, "MAX_LINGER", 60.0)
    batches = _counted_batches(monkeypatch)
    storage.store_recorded(document(path="/lone/"), set())
    _wait_for(lambda: batches)
    assert batches == [1]
    assert [t.path for t in Trace.objects.all()] == ["/lone/"]
    assert storage.flush(timeout=20)


@pytest.mark.django_db(transaction=True)
def test_the_writer_waits_while_traces_keep_coming_up_to_max_linger(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Traces closer together than LINGER share a transaction, until the
    first of them has waited MAX_LINGER."""
    from kolo_django.models import Trace

    monkeypatch.setattr(storage, "is_test_run", lambda: False)
    assert storage.flush(timeout=20)
    monkeypatch.setattr(storage, "LINGER", 1.0)
    monkeypatch.setattr(storage, "MAX_LINGER", 60.0)
    batches = _counted_batches(monkeypatch)
    # 1.35 s from the first to the last: one batch, though longer than LINGER.
    for i in range(10):
        storage.store_recorded(document(path=f"/steady/{i}/"), set())
        time.sleep(0.15)
    _wait_for(lambda: batches)
    assert batches == [10]

    # A stream that never goes quiet is written every MAX_LINGER all the same.
    monkeypatch.setattr(storage, "LINGER", 0.3)
    monkeypatch.setattr(storage, "MAX_LINGER", 0.6)
    for i in range(15):
        storage.store_recorded(document(path=f"/stream/{i}/"), set())
        time.sleep(0.1)
    assert storage.flush(timeout=20)
    # The stream's 15 traces in two batches or more, not in the one flush() writes.
    assert len(batches) >= 3
    assert sum(batches) == 25 and Trace.objects.count() == 25


def _linger(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """A writer that waits ``seconds`` for a batch to fill, quiet or not."""
    monkeypatch.setattr(storage, "LINGER", seconds)
    monkeypatch.setattr(storage, "MAX_LINGER", seconds)


def _watch_writer(monkeypatch: pytest.MonkeyPatch, linger: float) -> tuple[list[str], list[bool]]:
    """A writer (as outside tests) lingering ``linger`` seconds, after a
    flush(): the names of the threads that open a connection from now on,
    and one item per close_old_connections() of the writer."""
    import threading

    from django.db.backends.base.base import BaseDatabaseWrapper

    monkeypatch.setattr(storage, "is_test_run", lambda: False)
    _linger(monkeypatch, linger)
    assert storage.flush(timeout=20)
    opened: list[str] = []
    connect = BaseDatabaseWrapper.connect

    def counted_connect(self: Any) -> None:
        opened.append(threading.current_thread().name)
        connect(self)

    monkeypatch.setattr(BaseDatabaseWrapper, "connect", counted_connect)
    closes: list[bool] = []
    close_old_connections = storage.close_old_connections
    monkeypatch.setattr(
        storage, "close_old_connections", lambda: (closes.append(True), close_old_connections())
    )
    return opened, closes


def _writer_in_a_burst(
    monkeypatch: pytest.MonkeyPatch, first_batch: Any
) -> tuple[Any, list[Any], list[str], int]:
    """A full batch, then three more traces queued while it is written (after
    its insert, ``first_batch`` runs), then flush(). The writer's connection
    wrapper, as it is after flush(); the database connection each batch was
    written on; the names of the threads that opened one; how often the
    writer closed its old connections."""
    import threading

    from django.db import connections

    opened, closes = _watch_writer(monkeypatch, linger=60.0)
    entered, release = threading.Event(), threading.Event()
    wrappers: list[Any] = []
    used: list[Any] = []
    insert_rows = storage.insert_rows

    def held(rows: list[Any]) -> None:
        first = not entered.is_set()
        if first:
            entered.set()
            release.wait(20)
        insert_rows(rows)
        wrappers.append(connections[storage.alias()])
        used.append(wrappers[-1].connection)
        if first:
            first_batch()

    monkeypatch.setattr(storage, "insert_rows", held)
    for i in range(storage.BATCH):
        storage.store_recorded(document(path=f"/burst/{i}/"), set())
    assert entered.wait(20)
    for i in range(3):
        storage.store_recorded(document(path=f"/burst/more/{i}/"), set())
    release.set()
    assert storage.flush(timeout=20)
    writers = [name for name in opened if name == "kolo_django-writer"]
    return wrappers[-1], used, writers, len(closes)


def _closes(connection: Any) -> bool:
    # Django never closes an in-memory SQLite database (the SQLite test run's).
    return not getattr(connection, "is_in_memory_db", lambda: False)()


@pytest.mark.django_db(transaction=True)
def test_the_writer_keeps_its_connection_while_traces_keep_coming(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from kolo_django.models import Trace

    wrapper, used, opened, closes = _writer_in_a_burst(monkeypatch, lambda: None)
    assert Trace.objects.count() == storage.BATCH + 3
    # Two batches on one connection, closed once nothing waited (CONN_MAX_AGE 0).
    assert len(used) == 2 and used[0] is used[1]
    assert closes == 1
    if _closes(wrapper):
        assert opened == ["kolo_django-writer"]
        assert wrapper.connection is None


@pytest.mark.django_db(transaction=True)
def test_the_writer_does_not_reuse_a_connection_after_an_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from django.db import DatabaseError, connections

    from kolo_django.models import Trace

    def failing_query() -> None:
        with pytest.raises(DatabaseError):
            with connections[storage.alias()].cursor() as cursor:
                cursor.execute("SELECT * FROM kolo_django_no_such_table")

    wrapper, used, opened, closes = _writer_in_a_burst(monkeypatch, failing_query)
    assert Trace.objects.count() == storage.BATCH + 3
    # An error since the batch's commit: the connection may be broken. It is
    # closed at once, and the next batch opens another.
    assert closes == 2
    if _closes(wrapper):
        assert opened == ["kolo_django-writer", "kolo_django-writer"]
        assert used[0] is not used[1]
        assert wrapper.connection is None


def _wait_for(condition: Any, timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


@pytest.mark.django_db(transaction=True)
def test_the_writer_keeps_its_connection_between_batches_until_idle(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Traces one at a time (a developer clicking through pages): one
    connection serves the batches until the writer has been idle for IDLE
    seconds, or flush() asks for it closed."""
    from django.db import connections

    from kolo_django.models import Trace

    opened, closes = _watch_writer(monkeypatch, linger=0.0)
    used: list[Any] = []
    insert_rows = storage.insert_rows

    def traced(rows: list[Any]) -> None:
        insert_rows(rows)
        used.append((connections[storage.alias()], connections[storage.alias()].connection))

    monkeypatch.setattr(storage, "insert_rows", traced)
    writer = storage._writer

    monkeypatch.setattr(storage, "IDLE", 60.0)
    for i in range(3):
        storage.store_recorded(document(path=f"/one-by-one/{i}/"), set())
        assert _wait_for(lambda i=i: len(used) == i + 1)
    assert len({id(raw) for _wrapper, raw in used}) == 1 and closes == []
    assert storage.flush(timeout=20)
    assert closes == [True] and not writer.holding

    # Idle for IDLE seconds: the connection goes without a flush().
    monkeypatch.setattr(storage, "IDLE", 0.2)
    storage.store_recorded(document(path="/then-idle/"), set())
    assert _wait_for(lambda: len(used) == 4)
    assert _wait_for(lambda: len(closes) == 2)
    assert not writer.holding
    assert Trace.objects.count() == 4
    wrapper = used[-1][0]
    if _closes(wrapper):
        writers = [name for name in opened if name == "kolo_django-writer"]
        assert writers == ["kolo_django-writer", "kolo_django-writer"]
        assert wrapper.connection is None


@pytest.mark.django_db(transaction=True)
def test_debug_logs_none_of_the_storage_statements(
    monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    """Under DEBUG, Django logs each statement with its parameters quoted (on
    SQLite by a query of its own, every byte of the documents): not the
    traces' inserts, in the writer (whose log no request resets) or in the
    request."""
    import threading

    from django.db import connections

    settings.DEBUG = True
    monkeypatch.setattr(storage, "is_test_run", lambda: False)
    ops = type(connections[storage.alias()].ops)
    logged: list[tuple[str, str]] = []
    last_executed_query = ops.last_executed_query

    def spied(self: Any, cursor: Any, sql: str, params: Any) -> Any:
        logged.append((threading.current_thread().name, sql))
        return last_executed_query(self, cursor, sql, params)

    monkeypatch.setattr(ops, "last_executed_query", spied)
    writer_connections: list[Any] = []
    insert_rows = storage.insert_rows

    def noted(rows: list[Any]) -> None:
        writer_connections.append(connections[storage.alias()])
        insert_rows(rows)

    monkeypatch.setattr(storage, "insert_rows", noted)
    for i in range(3):
        storage.store_recorded(document(path=f"/debug/{i}/"), set())
    assert storage.flush(timeout=20)
    # Not even its COMMITs, which Django logs without a cursor.
    assert writer_connections and not writer_connections[-1].queries_log
    monkeypatch.setattr(storage, "is_test_run", lambda: True)
    before = list(connections[storage.alias()].queries_log)
    storage.store_recorded(document(path="/debug/in-request/"), set())
    assert list(connections[storage.alias()].queries_log) == before
    from kolo_django.models import Trace

    assert Trace.objects.count() == 4  # logged, as the project's own query
    assert len(logged) == 1 and "kolo_django_trace" in logged[0][1]
    assert logged[0][0] == threading.current_thread().name
    assert "INSERT" not in logged[0][1].upper()


def test_sigterm_flush_only_where_nothing_handles_sigterm(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import signal

    monkeypatch.setattr(storage, "is_test_run", lambda: False)
    installed: list[Any] = []
    monkeypatch.setattr(signal, "signal", lambda signum, handler: installed.append(handler))
    monkeypatch.setattr(signal, "getsignal", lambda signum: signal.SIG_DFL)
    storage.install_sigterm_flush()
    assert installed == [storage._flush_then_die]
    # A server (gunicorn, uvicorn, the autoreloader) with its own handler is left alone.
    monkeypatch.setattr(signal, "getsignal", lambda signum: print)
    storage.install_sigterm_flush()
    assert installed == [storage._flush_then_die]


def test_older_documents_are_upgraded() -> None:
    """Versions 2 to 4 only store less: a version 1 document reads as it was."""
    old = {"schema_version": 1, "events": [{"type": "call", "id": 1, "locals": {"x": "1"}}]}
    upgraded = trace.loads(zlib.compress(json.dumps(old).encode()))
    assert upgraded["schema_version"] == trace.SCHEMA_VERSION == 4
    assert upgraded["events"] == old["events"]


def _call(call_id: int, parent: int | None, depth: int, t: float) -> dict[str, Any]:
    return {
        "type": "call",
        "id": call_id,
        "parent": parent,
        "depth": depth,
        "function": "f",
        "t": t,
    }


def _return(call_id: int, t: float) -> dict[str, Any]:
    return {"type": "return", "id": call_id, "value": "None", "t": t}


# Calls as the recorder writes them: nested calls; a generator (2) suspended
# while its caller makes another call (4); a second thread's calls (5, 6)
# between the first thread's; a call with no return (the response was sent
# first); times with and without whole microseconds.
CALL_EVENTS = [
    _call(1, None, 0, 0.125),
    _call(2, 1, 1, 0.25),
    _call(3, 2, 2, 0.5),
    _return(3, 0.75),
    {"type": "sql", "sql": "SELECT 1", "t": 1.5},
    _call(4, 1, 1, 2.0),
    _call(5, None, 0, 2.125),
    _return(4, 2.25),
    _call(6, 5, 1, 2.5),
    _return(2, 3.0),
    _return(6, 3.125),
    {"type": "log", "t": None},
    _return(5, 1 / 3),
    _call(7, 1, 1, 4.0),
]


def test_calls_are_stored_without_what_their_order_implies() -> None:
    doc = document(events=CALL_EVENTS)
    stored = trace.pack(doc)
    packed = stored["events"]
    assert doc["events"] == CALL_EVENTS  # packing copies
    # The usual calls and returns keep none of their order's keys...
    assert packed[1] == {"type": "call", "function": "f"}
    assert packed[3] == {"type": "return", "value": "None"}
    # ...the others keep what differs: a call made beside a suspended
    # generator names its parent, a return that is not the innermost open
    # call's names its id, a time with a fraction of a microsecond stays.
    assert packed[5] == {"type": "call", "function": "f", "parent": 1}
    assert packed[7] == {"type": "return", "value": "None", "id": 4}
    assert packed[12] == {"type": "return", "value": "None", "t": 1 / 3}
    assert packed[4] is CALL_EVENTS[4]  # other events are left as they are
    # Their times, in one list: microseconds since the event before (the sql
    # event's at 1.5 ms included), or None where the event keeps its own.
    assert stored[trace.PACKED] == 2
    assert stored[trace.CALL_TIMES] == [125, 125, 250, 250, 500, 125, 125, 250, 500, 125, None, 875]
    back = trace.loads(trace.dumps(doc))
    assert back == doc
    assert [list(e) for e in back["events"]] == [list(e) for e in CALL_EVENTS]


def test_a_recorded_document_is_packed_in_place() -> None:
    doc = document(events=copy.deepcopy(CALL_EVENTS))
    events = doc["events"]
    assert trace.pack(doc, in_place=True) is doc
    assert (
        doc["events"] is events
        and doc["events"] == trace.pack(document(events=CALL_EVENTS))["events"]
    )
    # Packed already: written as it is, and read back as recorded.
    assert trace.pack(doc) is doc
    assert trace.loads(trace.dumps(doc))["events"] == CALL_EVENTS
    # A call the recorder did not write cannot be packed in place.
    doc = document(events=[{"type": "call", "id": 1, "t": 0.5}])
    with pytest.raises(trace.TraceFormatError, match="lacks its id, parent or depth"):
        trace.pack(doc, in_place=True)


def test_packing_reads_back_any_document() -> None:
    """Keys of odd types, or missing, are kept as they are."""
    odd = [
        {"type": "call", "id": "x", "parent": [1], "depth": "d", "t": "soon"},
        {"type": "call", "id": 2, "parent": True, "depth": 1.0},
        {"type": "return", "id": True, "t": 2},
        "not an event",
        {"type": "call", "id": 3, "parent": None, "depth": 0, "t": True},
        {"type": "return", "id": 1.0},
    ]
    doc = document(events=odd)
    assert trace.pack(doc)["events"] != odd
    assert trace.loads(trace.dumps(doc))["events"] == odd
    # A call without its parent is not the recorder's: nothing is left out.
    doc = document(events=[*CALL_EVENTS, {"type": "call", "id": 8, "t": 5.0}])
    assert trace.pack(doc) is doc
    assert trace.loads(trace.dumps(doc)) == doc


def test_rows_are_stored_by_column() -> None:
    """Columns compress better than rows; the document reads back as recorded,
    its keys in their order."""
    orm = {
        "type": "orm",
        "model": "todos.todo",
        "fields": ["id", "title", "done"],
        "rows": [(1, "a", True), (2, "b", False), (3, "c", None)],
        "t": 1.0,
    }
    sql = {
        "type": "sql",
        "sql": "SELECT id, n FROM t",
        "columns": ["id", "n"],
        "rows": [[1, {"$t": "decimal", "v": "1.5"}], [2, None]],
        "rows_read": 2,
        "t": 2.0,
    }
    one_row = {"type": "orm", "rows": [[1, "a"]], "t": 3.0}
    ragged = {"type": "sql", "rows": [[1], [2, 3]], "t": 4.0}
    events = [orm, sql, one_row, ragged]
    doc = document(events=copy.deepcopy(events))
    stored = trace.pack(doc)
    assert doc["events"] == events  # packing copies
    packed = stored["events"]
    assert packed[0]["rows_by_column"] == [[1, 2, 3], ["a", "b", "c"], [True, False, None]]
    assert list(packed[0]) == ["type", "model", "fields", "rows_by_column", "t"]
    assert packed[1]["rows_by_column"] == [[1, 2], [{"$t": "decimal", "v": "1.5"}, None]]
    assert packed[1]["columns"] == ["id", "n"]
    assert packed[2] is doc["events"][2] and packed[3] is doc["events"][3]
    assert trace.CALL_TIMES not in stored  # no calls
    back = trace.loads(trace.dumps(doc))
    expected = json.loads(json.dumps(events))  # rows read back as lists
    assert back["events"] == expected
    assert [list(e) for e in back["events"]] == [list(e) for e in events]
    # In place, as a recorded document is stored.
    doc = document(events=copy.deepcopy(events))
    assert trace.pack(doc, in_place=True) is doc
    assert list(doc["events"][0]) == ["type", "model", "fields", "rows_by_column", "t"]
    assert trace.loads(trace.dumps(doc))["events"] == expected
    # Nothing to pack: the document is stored as it is.
    plain = document(events=[one_row, ragged])
    assert trace.pack(plain) is plain and trace.PACKED not in plain


def test_calls_stored_with_their_times_inline_still_read() -> None:
    """Version 3 stored each call's time in the event, as "dt"."""
    stored = trace.pack(document(events=CALL_EVENTS))
    times = iter(stored.pop(trace.CALL_TIMES))
    events = []
    for event in stored["events"]:
        if event["type"] in ("call", "return"):
            event = dict(event)
            dt = next(times)
            if dt is not None:
                event["dt"] = dt
        events.append(event)
    old = {**stored, "schema_version": 3, trace.PACKED: 1, "events": events}
    back = trace.loads(zlib.compress(json.dumps(old).encode()))
    assert back["events"] == CALL_EVENTS
    assert back["schema_version"] == 4


@pytest.mark.parametrize(
    "packed",
    [
        {trace.PACKED: 1, "events": [{"type": "call", "dt": "x"}]},
        {trace.PACKED: 2, "events": [{"type": "call"}]},
        {trace.PACKED: 2, trace.CALL_TIMES: [], "events": [{"type": "call"}]},
        {trace.PACKED: 2, trace.CALL_TIMES: [1, 2], "events": [{"type": "call"}]},
        {trace.PACKED: 2, trace.CALL_TIMES: ["x"], "events": [{"type": "call"}]},
        {trace.PACKED: 2, trace.CALL_TIMES: 5, "events": [{"type": "call"}]},
        {trace.PACKED: 2, "events": [{"type": "orm", "rows_by_column": [[1, 2], [3]]}]},
        {trace.PACKED: 2, "events": [{"type": "orm", "rows_by_column": [1, 2]}]},
        {trace.PACKED: 2, "events": [{"type": "orm", "rows_by_column": []}]},
    ],
)
def test_a_broken_packed_document_is_a_format_error(packed: dict[str, Any]) -> None:
    data = zlib.compress(json.dumps({"schema_version": 4, **packed}).encode())
    with pytest.raises(trace.TraceFormatError, match="(call events|rows) cannot be read"):
        trace.loads(data)


def test_the_app_needs_no_new_migration(db: None) -> None:
    """A new schema version changes no field: the model's default is a callable."""
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("makemigrations", "kolo_django", check=True, dry_run=True, stdout=out)
    assert "No changes detected" in out.getvalue()


def test_flush_does_not_deadlock_inside_submit() -> None:
    """The SIGTERM handler flushes on the main thread, which a single-threaded
    server may have been running inside submit(), holding the writer's lock."""
    import threading

    done: list[bool] = []

    def interrupted_submit() -> None:
        with storage._writer.lock:
            done.append(storage.flush(timeout=5))

    thread = threading.Thread(target=interrupted_submit, daemon=True)
    thread.start()
    thread.join(10)
    assert done == [True]
