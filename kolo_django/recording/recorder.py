"""The per-request recorder, found through a context variable.

Context variables follow a request into ``sync_to_async`` threads and keep
concurrent async requests apart, so every hook looks the recorder up here.
"""

from __future__ import annotations

import contextlib
import logging
import time
import weakref
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

_current: ContextVar[Recorder | None] = ContextVar("kolo_django_recorder", default=None)


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
        self.orm_groups: dict[tuple[Any, ...], dict[str, Any]] = {}
        self.session_before: dict[str, Any] | None = None
        self.secrets: set[str] = set()
        self.faults: list[str] = []
        self.sql_count = 0
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
        return round((time.perf_counter() - self.started) * 1000, 3)

    def add(self, event: dict[str, Any]) -> dict[str, Any] | None:
        if len(self.events) >= self.max_events:
            self.dropped_events += 1
            return None
        event["t"] = self.elapsed_ms()
        self.events.append(event)
        return event

    @contextlib.contextmanager
    def in_mode(self, mode: str) -> Iterator[None]:
        previous, self.mode = self.mode, mode
        try:
            yield
        finally:
            self.mode = previous


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
