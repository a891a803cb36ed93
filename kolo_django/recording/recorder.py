"""The per-request recorder, found through a context variable.

Context variables follow a request into ``sync_to_async`` threads and keep
concurrent async requests apart, so every hook looks the recorder up here.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import weakref
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

from django.db import connections

_current: ContextVar[Recorder | None] = ContextVar("kolo_django_recorder", default=None)
logger = logging.getLogger("kolo_django")

# Fault kinds already logged in full by this process: a broken hook would
# otherwise log a traceback on every request.
_logged_kinds: set[str] = set()
_logged_lock = threading.Lock()


def _nothing() -> None:
    return None


# Set by frames where a C profile function captures calls: it is paused while
# the recorder runs code of its own, whose calls would only be ignored.
pause_calls = resume_calls = _nothing


def current() -> Recorder | None:
    return _current.get()


class Recorder:
    """Collects the events of one request, in order, within bounds."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.started = time.perf_counter()
        self.events: list[dict[str, Any]] = []
        self.dropped_events = 0
        self.max_events = int(config["MAX_EVENTS"])
        # None while recording normally; "backing" while fetching the rows
        # behind an aggregate (ORM rows kept, SQL hidden); "silent" while the
        # recorder itself runs code that may query (nothing kept).
        self.mode: str | None = None
        self.orm_depth = 0
        self.orm_compiler: Any = None
        self.orm_groups: dict[tuple[Any, ...], dict[str, Any]] = {}
        # (model, alias, pk) of rows recorded with every concrete field.
        self.rows_seen: set[tuple[Any, ...]] = set()
        # (model, alias) of tables whose every row is recorded as backing rows.
        self.whole_tables: set[tuple[Any, str]] = set()
        # Backing reads waiting to run (see orm.run_backing_reads).
        self.backing_reads: list[tuple[Any, ...]] = []
        self.session_before: dict[str, Any] | None = None
        self.secrets: set[str] = set()
        self.faults: list[str] = []
        self.sql_count = 0
        self.own_work_depth = 0
        # Rows kept per orm event: enough to seed what a page shows, and
        # bounded when a view walks a whole table.
        self.max_rows = max(int(config["MAX_ROWS_PER_QUERY"]), int(config["MAX_BACKING_ROWS"]))
        self.templates: list[str] = []
        self.template_context_source: Any = None
        self.mail_seen: weakref.WeakSet[Any] = weakref.WeakSet()
        self.http_depth = 0
        self.exception: dict[str, Any] | None = None
        self.calls: Any = None
        level = config["LOG_LEVEL"]
        self.log_level = (
            level if isinstance(level, int) else logging.getLevelName(str(level).upper())
        )

    def elapsed_ms(self) -> float:
        # Whole microseconds over 1000: the same figure as round(ms, 3) at
        # half its cost, paid for every event.
        return round((time.perf_counter() - self.started) * 1e6) / 1000

    def add(self, event: dict[str, Any]) -> dict[str, Any] | None:
        if len(self.events) >= self.max_events:
            self.dropped_events += 1
            return None
        event["t"] = self.elapsed_ms()
        self.events.append(event)
        return event

    def own_work(self) -> _OwnWork:
        """The recorder's own code runs (encoding rows, custom fields' str()):
        its calls are not the view's and are not recorded."""
        # A new one each time: one kept on the recorder would make a
        # reference cycle, leaving every finished recorder (and its events)
        # to the cyclic garbage collector.
        return _OwnWork(self)

    @contextlib.contextmanager
    def in_mode(self, mode: str) -> Iterator[None]:
        previous, self.mode = self.mode, mode
        pause_calls()
        try:
            yield
        finally:
            resume_calls()
            self.mode = previous


class _OwnWork:
    """``Recorder.own_work()``: a plain context manager, entered for every row
    a page reads (a generator-based one costs several times more)."""

    __slots__ = ("recorder",)

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder

    def __enter__(self) -> None:
        self.recorder.own_work_depth += 1
        pause_calls()

    def __exit__(self, *exc: object) -> None:
        resume_calls()
        self.recorder.own_work_depth -= 1


def fault(kind: str, recorder: Recorder | None = None, message: str = "") -> None:
    """Note a fault of the recorder, from inside an ``except`` block.

    The request goes on untouched; its recording is dropped (the middleware
    stores no trace whose recorder has faults). The first fault of each kind
    is logged with its traceback, later ones at DEBUG level.
    """
    if recorder is None:
        recorder = current()
    if recorder is not None:
        recorder.faults.append(kind)
    with _logged_lock:
        first = kind not in _logged_kinds
        _logged_kinds.add(kind)
    text = f"kolo_django could not record {message or kind}"
    extra = {"kolo_django_fault": kind}
    if first:
        logger.exception(
            "%s; the trace of this request is dropped. Further faults of this kind "
            "are logged at DEBUG level.",
            text,
            extra=extra,
        )
    else:
        logger.debug("%s; the trace of this request is dropped.", text, exc_info=True, extra=extra)


def logged_fault_kinds() -> frozenset[str]:
    return frozenset(_logged_kinds)


def reset_logged_faults() -> None:
    """Forget which fault kinds were logged (tests)."""
    with _logged_lock:
        _logged_kinds.clear()


@contextlib.contextmanager
def activate(recorder: Recorder) -> Iterator[Recorder]:
    token = _current.set(recorder)
    try:
        yield recorder
    finally:
        _current.reset(token)


@contextlib.contextmanager
def paused() -> Iterator[None]:
    """Run code (storage, the recorder's own lookups) with nothing recorded."""
    token = _current.set(None)
    try:
        yield
    finally:
        _current.reset(token)


@contextlib.contextmanager
def unlogged(using: str) -> Iterator[None]:
    """Our own statements (storing traces, backing reads) kept out of
    ``connection.queries`` under DEBUG, and so out of the project's query
    counts and toolbars. On SQLite, logging a statement also costs a query
    (Django quotes its parameters with ``SELECT QUOTE(?)``: every byte of a
    stored document), and no request ever resets the storage writer's log."""
    connection = connections[using]
    if "make_debug_cursor" in vars(connection):
        yield  # nested: the outer block restores it
        return
    log = connection.queries_log
    last = log[-1] if log else None
    # An instance attribute: this thread's connection only, for this block only.
    connection.make_debug_cursor = connection.make_cursor  # type: ignore[method-assign]
    try:
        yield
    finally:
        del connection.make_debug_cursor
        # Django logs COMMIT and ROLLBACK without a cursor: taken back.
        while log and log[-1] is not last:
            log.pop()
