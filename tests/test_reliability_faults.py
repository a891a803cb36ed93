"""Faults injected at each stage of recording: capture, reprs of locals,
serialisation, compression and storage (the traces' database unavailable).

For each stage the user's responses must be byte-identical to the responses
without the recorder; the recording of a faulted request is dropped (no
trace); each kind of fault is logged once with its traceback, later ones at
DEBUG level. Figures are printed as ``[figures] ...`` lines (run with ``-s``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import OperationalError, connection
from django.http import HttpRequest, HttpResponse
from django.test import Client, override_settings
from django.urls import include, path

from kolo_django.recording import frames
from kolo_django.recording.recorder import reset_logged_faults
from tests.helpers_recording import (
    RECORDING_OFF,
    documents,
    extra_database,
    recording_settings,
)

logger = logging.getLogger("todos.reliability")


class RaisingRepr:
    def __repr__(self) -> str:
        raise ValueError("this repr is broken")


class RecursiveRepr:
    def __repr__(self) -> str:
        return f"<{self!r}>"


class WrongRepr:
    def __repr__(self) -> Any:
        return 42


def reprs(request: HttpRequest) -> HttpResponse:
    raising, recursive, wrong = RaisingRepr(), RecursiveRepr(), WrongRepr()
    return HttpResponse(
        f"{type(raising).__name__} {type(recursive).__name__} {type(wrong).__name__}"
    )


def warn(request: HttpRequest) -> HttpResponse:
    logger.warning("careful: %s", request.GET.get("x"))
    return HttpResponse("warned")


def boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("boom")


urlpatterns = [
    path("reprs/", reprs),
    path("warn/", warn),
    path("boom/", boom),
    path("", include("example.urls")),
]

SETTINGS = recording_settings(CALLS_INCLUDE=[__name__, "todos"])


class Injected(Exception):
    pass


class Injector:
    """Replaces one callable; counts how many faults it injected."""

    def __init__(self, exc: Callable[[], BaseException]) -> None:
        self.exc = exc
        self.fired = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.fired += 1
        raise self.exc()


def _patch(monkeypatch: pytest.MonkeyPatch, target: str, exc: Any = None) -> Injector:
    injector = Injector(exc or (lambda: Injected("injected into the recorder")))
    monkeypatch.setattr(target, injector)
    return injector


class _Module:
    """A stand-in for a module in ``kolo_django.trace``, with one function broken."""

    def __init__(self, module: Any, name: str, injector: Injector) -> None:
        self._module, self._name, self._injector = module, name, injector

    def __getattr__(self, attribute: str) -> Any:
        return self._injector if attribute == self._name else getattr(self._module, attribute)


@contextlib.contextmanager
def _fail_trace_inserts(injector: Injector) -> Iterator[None]:
    """The traces' database goes away: every INSERT into the traces table fails."""

    def wrapper(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        if sql.lstrip().upper().startswith("INSERT") and "kolo_django_trace" in sql:
            injector()
        return execute(sql, params, many, context)

    with connection.execute_wrapper(wrapper):
        yield


def _requests(todo_pk: int) -> list[tuple[str, str, dict[str, Any]]]:
    """Requests with deterministic responses, covering every capture: ORM rows,
    aggregates, raw SQL, templates, outbound HTTP, logs, mail, writes, a 500."""
    return [
        ("get", f"/api/todos/{todo_pk}/", {}),
        ("get", "/stats/", {}),
        ("get", "/report/", {}),
        ("get", "/weather/", {}),
        ("get", "/warn/?x=1", {}),
        ("get", "/reprs/", {}),
        (
            "patch",
            f"/api/todos/{todo_pk}/",
            {"data": {"done": True}, "content_type": "application/json"},
        ),
        ("post", f"/todos/{todo_pk}/share/", {"data": {"email": "x@example.com"}}),
        ("get", "/boom/", {}),
        ("get", "/todos/999999/", {}),
    ]


# The messages cookie is signed with a timestamp in seconds.
SIGNATURE_RE = re.compile(r":[0-9A-Za-z]{6}:[A-Za-z0-9_-]{43}")


def _snapshot(client: Client, method: str, url: str, kwargs: dict[str, Any]) -> tuple[Any, ...]:
    response = getattr(client, method)(url, **kwargs)
    return (
        response.status_code,
        sorted(response.items()),
        SIGNATURE_RE.sub(":<timestamp:signature>", response.cookies.output()),
        response.content,
    )


def _run(todo_pk: int) -> list[tuple[Any, ...]]:
    client = Client(raise_request_exception=False)
    return [_snapshot(client, m, u, k) for m, u, k in _requests(todo_pk)]


# stage -> (what is broken, the fault kind logged)
STAGES = [
    "capture: sql",
    "capture: fetched rows",
    "capture: orm rows",
    "capture: backing rows",
    "capture: calls",
    "capture: locals",
    "capture: http",
    "capture: log",
    "capture: mail",
    "capture: template",
    "capture: write",
    "capture: request section",
    "redaction",
    "serialisation",
    "compression",
    "storage: broken database path",
    "storage: OperationalError",
]
KINDS = {
    "capture: sql": "sql",
    "capture: fetched rows": "sql",
    "capture: orm rows": "orm",
    "capture: backing rows": "backing rows",
    "capture: calls": "calls",
    "capture: locals": "calls",
    "capture: http": "http",
    "capture: log": "log",
    "capture: mail": "mail",
    "capture: template": "template",
    "capture: write": "write",
    "capture: request section": "document",
    "redaction": "document",
    "serialisation": "storage",
    "compression": "storage",
    "storage: broken database path": "storage",
    "storage: OperationalError": "storage",
}


@contextlib.contextmanager
def _inject(stage: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Injector]:
    from kolo_django import trace

    rec = "kolo_django.recording"
    targets = {
        "capture: sql": f"{rec}.sql._record",
        "capture: fetched rows": f"{rec}.sql.RowRecordingCursor._copy",
        "capture: orm rows": f"{rec}.orm.record_instance",
        "capture: backing rows": f"{rec}.orm.table_models",
        "capture: calls": f"{rec}.frames.CallTracker.on_call",
        "capture: locals": f"{rec}.frames.safe_locals",
        "capture: http": f"{rec}.http._text",
        "capture: log": f"{rec}.hooks.RecorderLogHandler._record",
        "capture: mail": f"{rec}.hooks._note_mail",
        "capture: template": f"{rec}.hooks._note_template",
        "capture: write": f"{rec}.writes._values",
        "capture: request section": f"{rec}.request._resolver",
        "redaction": "kolo_django.storage.Scrubber",
    }
    if stage in targets:
        yield _patch(monkeypatch, targets[stage])
    elif stage == "serialisation":
        injector = Injector(lambda: TypeError("Object of type X is not JSON serializable"))
        monkeypatch.setattr(trace, "json", _Module(json, "dumps", injector))
        if trace.orjson is not None:
            # orjson first, then json.dumps for what orjson cannot encode: both fail.
            monkeypatch.setattr(trace, "orjson", _Module(trace.orjson, "dumps", injector))
        yield injector
    elif stage == "compression":
        injector = Injector(lambda: ValueError("the compressor failed"))
        monkeypatch.setattr(trace, "new_compressor", injector)
        yield injector
    elif stage == "storage: broken database path":
        broken = tmp_path / "no-such-folder" / "traces.sqlite3"
        counter = Injector(lambda: Injected("unused"))
        with extra_database(
            "kolo_broken", {"ENGINE": "django.db.backends.sqlite3", "NAME": str(broken)}
        ) as alias:
            # Count the real failures: each connection attempt raises OperationalError.
            from django.db import connections

            original = connections[alias].get_new_connection

            def get_new_connection(params: Any) -> Any:
                counter.fired += 1
                return original(params)

            monkeypatch.setattr(connections[alias], "get_new_connection", get_new_connection)
            with override_settings(KOLO_DJANGO={**SETTINGS, "DATABASE_ALIAS": alias}):
                yield counter
    elif stage == "storage: OperationalError":
        injector = Injector(lambda: OperationalError("server closed the connection unexpectedly"))
        with _fail_trace_inserts(injector):
            yield injector
    else:  # pragma: no cover
        raise AssertionError(stage)


@pytest.mark.urls(__name__)
@pytest.mark.parametrize("stage", STAGES)
def test_injected_fault_breaks_no_request(
    stage: str,
    traces: Any,
    todo_pk: int,
    api_url: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: Any,
    tmp_path: Path,
) -> None:
    caplog.set_level(logging.DEBUG, logger="kolo_django")
    with override_settings(KOLO_DJANGO=RECORDING_OFF):
        expected = _run(todo_pk)
    with override_settings(KOLO_DJANGO=SETTINGS):
        # Without a fault every request leaves a trace.
        frames.reset_caches()
        assert _run(todo_pk) == expected
        assert traces.count() == len(expected)
        traces.all().delete()

        reset_logged_faults()
        frames.reset_caches()
        with _inject(stage, monkeypatch, tmp_path) as injector:
            actual = _run(todo_pk)
            # The same requests again: the kind is logged in full only once.
            again = _run(todo_pk)
        monkeypatch.undo()

    broken = [
        url
        for (_m, url, _k), want, got, got_again in zip(
            _requests(todo_pk), expected, actual, again, strict=True
        )
        if got != want or got_again != want
    ]
    records = [r for r in caplog.records if hasattr(r, "kolo_django_fault")]
    full = Counter(r.kolo_django_fault for r in records if r.levelno >= logging.ERROR)
    quiet = Counter(r.kolo_django_fault for r in records if r.levelno == logging.DEBUG)
    stored = documents(traces)
    requests_made = 2 * len(expected)
    print(
        f"[figures] fault stage={stage!r}: faults injected={injector.fired}, "
        f"requests={requests_made}, requests broken={len(broken)}, "
        f"traces stored={len(stored)}, logged in full={dict(full)}, at debug={dict(quiet)}"
    )
    assert broken == []
    assert injector.fired >= 2
    kind = KINDS[stage]
    # Logged once in full, with its traceback; the repeats at DEBUG level.
    # (Broken backing rows of raw SQL surface as an "sql" fault as well.)
    assert kind in full and set(full.values()) == {1}, full
    assert all(r.exc_info for r in records)
    assert quiet[kind] >= 1
    # A faulted recording is dropped; what is stored is complete.
    assert len(stored) < requests_made
    assert all(d["faults"] == [] for d in stored)


@pytest.mark.urls(__name__)
@override_settings(KOLO_DJANGO=SETTINGS)
def test_broken_reprs_are_contained_not_faults(traces: Any, db: None, caplog: Any) -> None:
    """A local whose ``__repr__`` raises, recurses or returns a non-string is a
    repr we show as such, not a fault: the trace is kept."""
    with override_settings(KOLO_DJANGO=RECORDING_OFF):
        expected = Client().get("/reprs/").content
    assert Client().get("/reprs/").content == expected
    (document,) = documents(traces)
    assert document["faults"] == []
    (call,) = [e for e in document["events"] if e["type"] == "call" and e["function"] == "reprs"]
    (ret,) = [e for e in document["events"] if e["type"] == "return" and e["id"] == call["id"]]
    assert ret["locals"]["raising"] == "<RaisingRepr (repr failed: ValueError)>"
    assert ret["locals"]["recursive"] == "<RecursiveRepr (repr recursed)>"
    assert ret["locals"]["wrong"] == "<WrongRepr (repr failed: TypeError)>"
    assert not [r for r in caplog.records if hasattr(r, "kolo_django_fault")]
