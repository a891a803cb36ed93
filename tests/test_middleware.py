"""When the middleware records a request, and when it leaves it alone."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import mail
from django.test import Client, override_settings

from kolo_django import storage
from kolo_django.middleware import KoloMiddleware

RECORD = {"RECORD_DURING_TESTS": True}


def test_declares_both_modes() -> None:
    assert KoloMiddleware.sync_capable and KoloMiddleware.async_capable


@pytest.mark.parametrize(
    ("debug", "kolo", "recorded"),
    [
        (False, RECORD, False),
        (True, RECORD, True),
        (False, {**RECORD, "ENABLED": True}, True),
        (True, {**RECORD, "ENABLED": False}, False),
        (True, {"ENABLED": True}, False),
    ],
)
def test_switches(
    client: Client, traces: Any, debug: bool, kolo: dict[str, Any], recorded: bool
) -> None:
    with override_settings(DEBUG=debug, KOLO_DJANGO=kolo):
        assert client.get("/stats/").status_code == 200
    assert traces.count() == int(recorded)


@pytest.mark.django_db(transaction=True)
def test_records_outside_a_test_run_by_default(
    client: Client, traces: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delattr(mail, "outbox")
    with override_settings(DEBUG=True, KOLO_DJANGO={}):
        client.get("/stats/")
    # Outside a test run the writer thread stores it, moments later.
    assert storage.flush(timeout=30)
    assert [t.path for t in traces.all()] == ["/stats/"]


@pytest.mark.parametrize(
    "path",
    ["/static/app.css", "/media/attachments/a.txt", "/admin/kolo_django/trace/", "/favicon.ico"],
)
def test_ignored_paths(client: Client, traces: Any, path: str) -> None:
    client.get(path)
    assert not traces.exists()
    client.get("/stats/")
    assert traces.count() == 1


def test_custom_ignore_paths(client: Client, traces: Any) -> None:
    with override_settings(
        KOLO_DJANGO={"ENABLED": True, "RECORD_DURING_TESTS": True, "IGNORE_PATHS": [r"^/stat"]}
    ):
        client.get("/stats/")
        client.get("/report/")
        client.get("/api/todos/")
    assert sorted(t.path for t in traces.all()) == ["/api/todos/", "/report/"]


def test_other_admin_pages_are_recorded(client: Client, traces: Any) -> None:
    client.get("/admin/todos/todo/")
    assert [t.path for t in traces.all()] == ["/admin/todos/todo/"]


@override_settings(KOLO_DJANGO={"ENABLED": True, "RECORD_DURING_TESTS": True, "MAX_EVENTS": 10})
def test_max_events_bounds_the_document(client: Client, traces: Any, seeded: None) -> None:
    client.get("/todos/")
    (obj,) = traces.all()
    document = obj.load_document()
    assert len(document["events"]) == 10
    assert document["dropped_events"] > 0
    assert obj.event_count == 10


@override_settings(
    KOLO_DJANGO={"ENABLED": True, "RECORD_DURING_TESTS": True, "CAPTURE_CALLS": False}
)
def test_capture_calls_off(client: Client, traces: Any, seeded: None) -> None:
    client.get("/stats/")
    (obj,) = traces.all()
    kinds = {e["type"] for e in obj.load_document()["events"]}
    assert "call" not in kinds and "return" not in kinds and "sql" in kinds


def test_view_calls_and_locals(client: Client, traces: Any, seeded: None) -> None:
    client.get("/stats/")
    (obj,) = traces.all()
    document = obj.load_document()
    (call,) = [e for e in document["events"] if e["type"] == "call" and e["function"] == "stats"]
    assert call["module"] == "todos.views" and call["file"] == "todos/views.py"
    (ret,) = [e for e in document["events"] if e["type"] == "return" and e["id"] == call["id"]]
    assert ret["value"] == "<HttpResponse status_code=200>"
    assert ret["locals"]["request"] == "<WSGIRequest GET '/stats/'>"
    assert ret["locals"]["open_todos"] == "<QuerySet todos.Todo (not evaluated)>"


@pytest.mark.parametrize("capture_calls", [False, True])
def test_a_finished_recorder_is_freed_without_the_garbage_collector(
    client: Client, traces: Any, capture_calls: bool
) -> None:
    """No reference cycle keeps a recorder (and its events) alive after its
    request: a full collection in some later request would pay for it."""
    import gc

    from kolo_django.recording.recorder import Recorder

    def recorders() -> int:
        return sum(1 for obj in gc.get_objects() if isinstance(obj, Recorder))

    gc.collect()
    gc.disable()
    try:
        with override_settings(DEBUG=True, KOLO_DJANGO={**RECORD, "CAPTURE_CALLS": capture_calls}):
            assert client.get("/todos/").status_code == 200
        assert traces.count() == 1
        assert recorders() == 0
    finally:
        gc.enable()
