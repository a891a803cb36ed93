"""Writing, reading and pruning stored traces, on the configured database alias."""

from __future__ import annotations

import atexit
import datetime as dt
import json
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

from django.db import close_old_connections, connections, transaction
from django.utils import timezone

from . import trace
from .conf import get_config, is_test_run
from .models import Trace
from .recording.recorder import fault, paused, unlogged
from .recording.redact import Scrubber

logger = logging.getLogger("kolo_django")


def alias() -> str:
    return str(get_config()["DATABASE_ALIAS"])


def summary_fields(document: dict[str, Any]) -> dict[str, Any]:
    request = document.get("request") or {}
    response = document.get("response") or {}
    events = document.get("events") or []
    return {
        "method": str(request.get("method") or "")[:10],
        "path": str(request.get("path") or "")[:1024],
        "status_code": response.get("status_code"),
        "view_name": str((request.get("resolver") or {}).get("view_name") or "")[:255],
        "duration_ms": float(document.get("duration_ms") or 0),
        "query_count": sum(1 for e in events if e.get("type") == "sql"),
        "event_count": len(events),
    }


def save_document(document: dict[str, Any]) -> Trace:
    """Store one document. Runs in its own transaction on the traces' alias so
    it survives a rolled-back request transaction."""
    obj = trace_row(document, trace.dumps(document))
    with transaction.atomic(using=alias()):
        obj.save(using=alias(), force_insert=True)
    return obj


def trace_row(document: dict[str, Any], data: bytes) -> Trace:
    started = trace.decode_value(document.get("started_at"))
    created_at = started if isinstance(started, dt.datetime) else timezone.now()
    return Trace(
        id=document["id"],
        created_at=created_at,
        schema_version=document.get("schema_version", trace.SCHEMA_VERSION),
        size=len(data),
        document=data,
        **summary_fields(document),
    )


# --- Recorded traces: stored in the request, or by one writer thread ------------------

PRUNE_EVERY = 50
# Traces waiting for the writer beyond this are stored in the request instead:
# memory stays bounded when the database cannot keep up.
MAX_QUEUED = 100
# Traces written in one transaction (one commit, one fsync), and how long the
# writer waits for a batch to fill: a batch is written once no trace has come
# for LINGER seconds, and at the latest MAX_LINGER seconds after its first.
# A commit per trace costs about as much as serialising it, and on SQLite it
# locks the database against the requests' own reads while it syncs; waking
# the writer for each trace makes it contend with the requests for the GIL.
BATCH = 20
LINGER = 0.1
MAX_LINGER = 1.0
# Seconds without a trace after which the writer lets its connection go.
IDLE = 1.0

_saves = 0
_saves_lock = threading.Lock()


def saves() -> int:
    """Recorded traces stored by this process (the benchmarks count them)."""
    return _saves


def store_recorded(document: dict[str, Any], secrets: set[str]) -> None:
    """Redact, serialise and compress a just-recorded document, then store it:
    in a writer thread, or here when running under tests (a test reads the
    trace right after its request), with ``STORE_IN_BACKGROUND`` off, or when
    the writer is behind.

    The first part runs here, in the request: it holds the GIL either way,
    and the document's many objects are freed at once instead of waiting in
    the queue, where the garbage collector would walk them again and again.
    The writer is left the insert and the commit, which wait on the database."""
    row = _prepare(document, secrets)
    if row is None:
        return
    if get_config()["STORE_IN_BACKGROUND"] and not is_test_run():
        if _writer.submit(row):
            return
    _store_rows([row])


def flush(timeout: float | None = None) -> bool:
    """Wait until every trace handed to the writer is stored (or dropped on a
    fault); False if ``timeout`` seconds passed first."""
    return _writer.flush(timeout)


def _prepare(document: dict[str, Any], secrets: set[str]) -> Trace | None:
    """The row to insert: the document scrubbed and serialised. Its JSON text
    is checked as it is written; only a document that may hold something to
    scrub is walked (in place) and written again."""
    stage = "document"
    try:
        scrubber = Scrubber(secrets)
        stage = "storage"
        # The recorder's document is not read again: packed in place.
        document = trace.pack(document, in_place=True)
        data = trace.dumps_checked(document, scrubber.dirty)
        if data is None:
            stage = "document"
            scrubber.walk(document)
            stage = "storage"
            data = trace.dumps(document)
    except Exception:
        what = "redaction" if stage == "document" else "storage"
        fault(stage, None, f"trace {document.get('id')} ({what})")
        return None
    # After the scrub: the summary repeats the path, which may hold a token.
    return trace_row(document, data)


def _store_rows(rows: list[Trace]) -> None:
    global _saves
    stored = 0
    with paused(), unlogged(alias()):
        try:
            insert_rows(rows)
            stored = len(rows)
        except Exception:
            if len(rows) == 1:
                fault("storage", None, f"trace {rows[0].id} (storage)")
                return
            # One bad row must not lose the others: store them one by one.
            for row in rows:
                try:
                    insert_rows([row])
                    stored += 1
                except Exception:
                    fault("storage", None, f"trace {row.id} (storage)")
        if not stored:
            return
        with _saves_lock:
            before = _saves
            _saves += stored
            prune_now = _saves // PRUNE_EVERY != before // PRUNE_EVERY
        if prune_now:
            try:
                prune()
            except Exception:
                fault("prune", None, "(pruning old traces)")


def insert_rows(rows: list[Trace]) -> None:
    """One transaction on the traces' alias, apart from any of the request's."""
    using = alias()
    with transaction.atomic(using=using):
        Trace.objects.using(using).bulk_create(rows)


class _Writer:
    """One daemon thread that inserts the trace rows requests hand over, a batch
    per transaction. Nothing is lost at exit: ``flush`` runs at ``atexit``.

    A request only appends its trace: the writer is woken by the first trace
    of a batch, then sleeps until the batch is full, no trace has come for
    ``LINGER`` seconds, or ``MAX_LINGER`` has passed. A developer's click is
    stored a moment after its request; a burst of requests is stored in a
    few transactions.
    Waking a thread for each request (as a queue does) costs the requests more
    than the writing itself: every wake-up hands the GIL over and back."""

    def __init__(self) -> None:
        # Re-entrant: the SIGTERM handler flushes from the main thread, which
        # a single-threaded server may have stopped inside submit().
        self.lock = threading.RLock()
        self.idle = threading.Condition(self.lock)
        self.wake = threading.Condition(self.lock)
        self.items: list[Trace] = []
        # time.monotonic() of the latest trace queued.
        self.last_submit = 0.0
        # Traces queued or being written.
        self.pending = 0
        # Set by flush(): write what is queued now.
        self.hurry = False
        # The writer kept its connection after its last batch; flush() asks
        # for it closed (release).
        self.holding = False
        self.release = False
        self.thread: threading.Thread | None = None
        self.pid = 0

    def submit(self, row: Trace) -> bool:
        with self.lock:
            if self.pending >= MAX_QUEUED:
                return False
            if self.thread is None or self.pid != os.getpid() or not self.thread.is_alive():
                # Started on first use, and again in a forked worker process.
                self.items = []
                self.pending = 0
                self.hurry = False
                self.holding = self.release = False
                self.pid = os.getpid()
                self.thread = threading.Thread(
                    target=self._run, name="kolo_django-writer", daemon=True
                )
                self.thread.start()
            self.items.append(row)
            self.last_submit = time.monotonic()
            self.pending += 1
            if len(self.items) in (1, BATCH):
                self.wake.notify()
        return True

    def _take(self) -> list[Trace] | None:
        """The next batch, once full, lingered for, or hurried; None when the
        connection kept since the last batch should go: idle for ``IDLE``
        seconds, or flush() asks."""
        with self.lock:
            idle_until = time.monotonic() + IDLE
            while not self.items:
                if not self.holding:
                    self.wake.wait()
                    continue
                left = idle_until - time.monotonic()
                if self.release or left <= 0:
                    return None
                self.wake.wait(left)
            deadline = time.monotonic() + MAX_LINGER
            while len(self.items) < BATCH and not self.hurry:
                wait = min(deadline, self.last_submit + LINGER) - time.monotonic()
                if wait <= 0:
                    break
                self.wake.wait(wait)
            items = self.items[:BATCH]
            del self.items[:BATCH]
            if not self.items:
                self.hurry = False
            return items

    def _run(self) -> None:
        while True:
            items = self._take()
            if items is None:
                # Idle, as after a request: CONN_MAX_AGE decides whether the
                # connection stays open.
                close_old_connections()
                with self.lock:
                    self.holding = self.release = False
                    self.idle.notify_all()
                continue
            try:
                _store_rows(items)
            except Exception:
                fault("storage", None, "traces (storage)")
            finally:
                # While traces keep coming, one connection serves the batches:
                # a new one costs a new server process on PostgreSQL, and on
                # SQLite Django registers its SQL functions again. One that a
                # failed write may have broken is never reused.
                broken = _errors_occurred()
                if broken:
                    close_old_connections()
                with self.lock:
                    self.holding = not broken
                    self.pending -= len(items)
                    if self.pending <= 0:
                        self.idle.notify_all()

    def flush(self, timeout: float | None = None) -> bool:
        # Bounded even for the lock: a flush at exit must never hang the process.
        deadline = None if timeout is None else time.monotonic() + timeout

        def left() -> float | None:
            return None if deadline is None else max(0.0, deadline - time.monotonic())

        if not self.lock.acquire(timeout=-1 if timeout is None else timeout):
            return False
        try:
            if self.thread is None or self.pid != os.getpid():
                return True
            if self.items:
                self.hurry = True
                self.wake.notify()
            if not self.idle.wait_for(lambda: self.pending <= 0, left()):
                return False
            # The writer's connection is closed before this returns: a test
            # database can be dropped after it.
            if self.holding:
                self.release = True
                self.wake.notify()
                return self.idle.wait_for(lambda: not self.holding, left())
            return True
        finally:
            self.lock.release()


def _errors_occurred() -> bool:
    return any(conn.errors_occurred for conn in connections.all(initialized_only=True))


_writer = _Writer()
atexit.register(flush, 30)


def install_sigterm_flush() -> None:
    """A process stopped by an unhandled SIGTERM (a bare ``runserver``) runs no
    ``atexit``: on SIGTERM, store what is queued, then die of the signal as
    before. Left alone when the process handles SIGTERM itself."""
    try:
        if not get_config()["STORE_IN_BACKGROUND"] or is_test_run():
            return
        if threading.current_thread() is not threading.main_thread():
            return
        if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
            signal.signal(signal.SIGTERM, _flush_then_die)
    except Exception:  # an invalid setting (the checks report it), no signals here
        logger.debug("kolo_django: no SIGTERM flush", exc_info=True)


def _flush_then_die(signum: int, frame: Any) -> None:
    flush(10)
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def listing() -> Any:
    """Traces newest first, without their documents."""
    return Trace.objects.using(alias()).defer("document")


def get_trace(trace_id: str) -> Trace:
    """Raises ``LookupError`` with a one-line reason."""
    if not trace.is_trace_id(trace_id):
        raise LookupError(
            f"{trace_id!r} is not a trace id (expected trc_ followed by 26 characters)"
        )
    try:
        return Trace.objects.using(alias()).get(pk=trace_id)
    except Trace.DoesNotExist:
        raise LookupError(f"no trace with id {trace_id}") from None


def load(trace_id: str) -> dict[str, Any]:
    """The document of a stored trace; ``LookupError`` or ``TraceFormatError``."""
    obj = get_trace(trace_id)
    try:
        return obj.load_document()
    except trace.TraceFormatError as exc:
        raise trace.TraceFormatError(f"trace {trace_id}: {exc}") from None


def prune(
    *,
    max_traces: int | None = None,
    max_age_days: float | None = None,
    batch_size: int | None = None,
) -> int:
    """Delete traces beyond the retention limits in batches; returns how many."""
    config = get_config()
    if max_traces is None:
        max_traces = config["RETENTION_MAX_TRACES"]
    if max_age_days is None:
        max_age_days = config["RETENTION_MAX_AGE_DAYS"]
    batch = batch_size or config["PRUNE_BATCH_SIZE"]
    queryset = Trace.objects.using(alias())
    deleted = 0
    if max_age_days is not None:
        cutoff = timezone.now() - dt.timedelta(days=max_age_days)
        deleted += _delete_in_batches(queryset.filter(created_at__lt=cutoff), batch)
    if max_traces is not None:
        # The newest max_traces are kept; everything older goes.
        boundary = queryset.order_by("-created_at", "-id").values_list("created_at", "id")[
            max_traces : max_traces + 1
        ]
        row = next(iter(boundary), None)
        if row is not None:
            created_at, trace_id = row
            older = queryset.filter(created_at__lt=created_at) | queryset.filter(
                created_at=created_at, id__lte=trace_id
            )
            deleted += _delete_in_batches(older, batch)
    return deleted


def _delete_in_batches(queryset: Any, batch: int) -> int:
    """Oldest first, ``batch`` ids at a time: memory and lock time stay bounded
    however many traces go."""
    using = alias()
    deleted = 0
    while True:
        ids = list(queryset.order_by("created_at", "id").values_list("id", flat=True)[:batch])
        if not ids:
            return deleted
        # A plain DELETE: QuerySet.delete() would load every row, documents
        # included, to send signals nobody needs for traces.
        count = Trace.objects.using(using).filter(id__in=ids)._raw_delete(using)
        deleted += count or 0


def export_lines(queryset: Any) -> Iterator[str]:
    """JSON lines: one document per line, with its id."""
    for obj in queryset.iterator(chunk_size=200):
        try:
            document = obj.load_document()
        except trace.TraceFormatError:
            continue
        yield json.dumps(document, separators=(",", ":"), ensure_ascii=False)


def import_line(line: str) -> Trace:
    try:
        document = trace.upgrade(json.loads(line))
    except ValueError as exc:
        raise trace.TraceFormatError(f"not a trace document: {exc}") from None
    if not trace.is_trace_id(str(document.get("id", ""))):
        raise trace.TraceFormatError("the document has no valid id")
    return save_document(document)
