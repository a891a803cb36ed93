"""A fault anywhere in the recorder leaves the user's response exactly as without it.

The recording of a request that met a fault is dropped (no trace stored), and
each kind of fault is logged once with its traceback, later ones at DEBUG level.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.http import HttpRequest, HttpResponse
from django.test import AsyncClient, Client, override_settings
from django.urls import include, path

from kolo_django.recording import frames
from kolo_django.recording.recorder import reset_logged_faults
from tests.helpers_recording import RECORDING_OFF, documents


def _boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("boom")


def _warn(request: HttpRequest) -> HttpResponse:
    logging.getLogger("todos.throwaway").warning("careful: %s", request.GET.get("x"))
    return HttpResponse("warned")


def _raw(request: HttpRequest) -> HttpResponse:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT title FROM todos_todo ORDER BY id")
        first = cursor.fetchone()
        rest = cursor.fetchmany(3)
        tail = list(cursor)
    return HttpResponse(f"{first} {rest} {len(tail)}")


class Nasty:
    def __repr__(self) -> str:
        raise ValueError("repr is broken")


def _nasty(request: HttpRequest) -> HttpResponse:
    thing = Nasty()
    return HttpResponse("survived" if thing else "")


urlpatterns = [
    path("nasty/", _nasty),
    path("boom/", _boom),
    path("warn/", _warn),
    path("raw/", _raw),
    path("", include("example.urls")),
]


class Injected(Exception):
    pass


def _raise(*args: Any, **kwargs: Any) -> Any:
    raise Injected("injected into the recorder")


@pytest.fixture(autouse=True)
def fresh_fault_log() -> Iterator[None]:
    reset_logged_faults()
    yield
    reset_logged_faults()


def logged_faults(caplog: Any) -> Counter[str]:
    """Fault kind -> how many times it was logged in full (ERROR, with traceback)."""
    records = [r for r in caplog.records if hasattr(r, "kolo_django_fault")]
    assert all(r.exc_info for r in records)
    return Counter(r.kolo_django_fault for r in records if r.levelno >= logging.ERROR)


# (object path, attribute, fault kind that must be logged, when one is certain)
INJECTIONS = [
    ("kolo_django.middleware", "Recorder", "start"),
    ("kolo_django.middleware", "capture_request", "document"),
    ("kolo_django.middleware", "capture_response", "document"),
    ("kolo_django.storage", "Scrubber", "document"),
    ("kolo_django.storage", "insert_rows", "storage"),
    ("kolo_django.trace", "dumps_checked", "storage"),
    ("kolo_django.recording.request", "_body", "document"),
    ("kolo_django.recording.request", "_user", "document"),
    ("kolo_django.recording.recorder.Recorder", "add", None),
    ("kolo_django.recording.sql", "_record", "sql"),
    ("kolo_django.recording.sql", "encode_value", None),
    ("kolo_django.recording.sql.RowRecordingCursor", "_copy", "sql"),
    ("kolo_django.recording.orm", "record_instance", "orm"),
    ("kolo_django.recording.orm", "table_models", "backing rows"),
    ("kolo_django.recording.orm", "_record_rows", "backing rows"),
    ("kolo_django.recording.frames.CallTracker", "on_call", "calls"),
    ("kolo_django.recording.frames.CallTracker", "on_return", "calls"),
    ("kolo_django.recording.frames", "safe_locals", "calls"),
    ("kolo_django.recording.reprs", "_repr", "calls"),
    ("kolo_django.recording.frames", "is_project_code", "calls"),
    ("kolo_django.recording.hooks", "_note_template", "template"),
    ("kolo_django.recording.http", "redact_mapping", "http"),
    ("kolo_django.recording.http", "_text", "http"),
    ("kolo_django.recording.redact", "is_secret_key", None),
]


def _snapshot(client: Client, p: str) -> tuple[Any, ...]:
    response = client.get(p)
    return (
        response.status_code,
        sorted(response.items()),
        response.cookies.output(),
        response.content,
    )


def _paths(todo_pk: int) -> list[str]:
    # Views with deterministic output (no CSRF token, no timestamps), covering
    # ORM rows, aggregates, raw SQL, templates, outbound HTTP, logs and a 500.
    return [
        f"/api/todos/{todo_pk}/",
        "/api/todos/?done=true",
        "/stats/",
        "/report/",
        "/raw/",
        "/weather/",
        "/quote/",
        "/warn/?x=1",
        "/boom/",
        "/todos/999999/",
    ]


@pytest.mark.urls(__name__)
@pytest.mark.parametrize(("target", "attribute", "fault"), INJECTIONS)
def test_fault_leaves_response_identical(
    traces: Any,
    todo_pk: int,
    api_url: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: Any,
    target: str,
    attribute: str,
    fault: str | None,
) -> None:
    caplog.set_level(logging.DEBUG, logger="kolo_django")
    client = Client(raise_request_exception=False)
    with override_settings(KOLO_DJANGO=RECORDING_OFF):
        expected = [_snapshot(client, p) for p in _paths(todo_pk)]
    assert not traces.exists()

    # Decisions about code objects are cached; start afresh so they are made again.
    frames.reset_caches()
    monkeypatch.setattr(f"{target}.{attribute}", _raise)
    actual = [_snapshot(client, p) for p in _paths(todo_pk)]
    monkeypatch.undo()

    for p, want, got in zip(_paths(todo_pk), expected, actual, strict=True):
        assert got == want, p
    # The fault was seen and logged, once per kind, not on every request.
    logged = logged_faults(caplog)
    assert logged and set(logged.values()) == {1}, logged
    if fault is not None:
        assert fault in logged, logged
    # The requests whose recording faulted left no trace; the others are whole.
    stored = documents(traces)
    assert len(stored) < len(_paths(todo_pk))
    assert all(d["faults"] == [] for d in stored)


@pytest.mark.urls(__name__)
def test_share_with_mail_fault(traces: Any, todo_pk: int, monkeypatch: pytest.MonkeyPatch) -> None:
    from django.core import mail

    monkeypatch.setattr("kolo_django.recording.hooks._note_mail", _raise)
    response = Client().post(f"/todos/{todo_pk}/share/", {"email": "x@example.com"})
    assert response.status_code == 302
    assert response["Location"] == f"/todos/{todo_pk}/"
    assert [m.attachments[0][0] if m.attachments else None for m in mail.outbox] == [
        None,
        "todo.txt",
    ]
    # A trace without its mail would make a wrong test: none is stored.
    assert not traces.exists()


@pytest.mark.urls(__name__)
@override_settings(
    KOLO_DJANGO={"ENABLED": True, "RECORD_DURING_TESTS": True, "CALLS_INCLUDE": [__name__]}
)
def test_broken_user_repr_is_contained(client: Client, traces: Any, db: None) -> None:
    assert client.get("/nasty/").content == b"survived"
    (obj,) = traces.all()
    document = obj.load_document()
    (call,) = [e for e in document["events"] if e["type"] == "call" and e["function"] == "_nasty"]
    (ret,) = [e for e in document["events"] if e["type"] == "return" and e["id"] == call["id"]]
    assert ret["locals"]["thing"] == "<Nasty (repr failed: ValueError)>"
    assert document["faults"] == []


@pytest.mark.urls(__name__)
@pytest.mark.parametrize(
    ("target", "attribute"),
    [
        ("kolo_django.middleware", "capture_request"),
        ("kolo_django.storage", "insert_rows"),
        ("kolo_django.recording.recorder.Recorder", "add"),
        ("kolo_django.recording.frames.CallTracker", "on_call"),
    ],
)
def test_fault_under_asgi(
    traces: Any, todo_pk: int, monkeypatch: pytest.MonkeyPatch, target: str, attribute: str
) -> None:
    paths = [f"/api/todos/{todo_pk}/", "/stats/", "/boom/", "/warn/?x=2"]

    async def run() -> list[tuple[Any, ...]]:
        client = AsyncClient(raise_request_exception=False)
        responses = [await client.get(p) for p in paths]
        return [(r.status_code, sorted(r.items()), r.content) for r in responses]

    with override_settings(KOLO_DJANGO=RECORDING_OFF):
        expected = async_to_sync(run)()
    frames.reset_caches()
    monkeypatch.setattr(f"{target}.{attribute}", _raise)
    assert async_to_sync(run)() == expected
