"""Traces survive the request's rollback, and the recorder's own writes stay out of them."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.db import connections
from django.http import HttpRequest, HttpResponse
from django.test import Client, override_settings
from django.urls import include, path

from kolo_django import storage
from tests.helpers_recording import documents, events, only_trace


def _create_then_fail(request: HttpRequest) -> HttpResponse:
    from todos.models import TodoList

    TodoList.objects.create(name=request.GET["name"])
    if request.GET.get("fail"):
        raise RuntimeError("after the write")
    return HttpResponse("created")


urlpatterns = [
    path("create/", _create_then_fail),
    path("", include("example.urls")),
]

RECORD = {"ENABLED": True, "RECORD_DURING_TESTS": True, "RETENTION_MAX_AGE_DAYS": None}


@pytest.fixture
def atomic_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(connections["default"].settings_dict, "ATOMIC_REQUESTS", True)


@pytest.mark.urls(__name__)
@pytest.mark.django_db(transaction=True)
def test_failed_atomic_request_keeps_its_trace(traces: Any, atomic_requests: None) -> None:
    from todos.models import TodoList

    response = Client(raise_request_exception=False).get("/create/?name=Doomed&fail=1")
    assert response.status_code == 500
    assert not TodoList.objects.filter(name="Doomed").exists()
    obj, document = only_trace(traces)
    assert (obj.path, obj.status_code) == ("/create/", 500)
    assert document["exception"]["message"] == "after the write"
    (insert,) = [
        e for e in events(document, "sql", statement="INSERT") if "todos_todolist" in e["sql"]
    ]
    assert "Doomed" in insert["params"]


@pytest.mark.urls(__name__)
@pytest.mark.django_db(transaction=True)
def test_successful_atomic_request_commits_both(traces: Any, atomic_requests: None) -> None:
    from todos.models import TodoList

    assert Client().get("/create/?name=Kept").status_code == 200
    assert TodoList.objects.filter(name="Kept").exists()
    obj, document = only_trace(traces)
    assert document["exception"] is None and obj.status_code == 200


@pytest.mark.django_db(transaction=True)
def test_on_commit_log_is_recorded_in_autocommit(traces: Any) -> None:
    from django.core.management import call_command

    call_command("seed_example", todos=3, stdout=open("/dev/null", "w"))
    from todos.models import Todo, TodoList

    response = Client().post(
        "/api/todos/",
        {"title": "Committed", "todo_list": TodoList.objects.first().pk},
        content_type="application/json",
    )
    assert response.status_code == 201
    created = Todo.objects.get(title="Committed")
    _obj, document = only_trace(traces)
    (log,) = events(document, "log", logger="todos")
    assert log["message"] == f"todo created: {created.pk}"


def _mentions_trace_table(document: dict[str, Any]) -> list[str]:
    return [e["sql"] for e in events(document, "sql") if "kolo_django_trace" in e["sql"].lower()]


def _own_writes_stay_out(client: Client, traces: Any) -> None:
    from todos.models import Todo

    todo = Todo.objects.order_by("pk").first()
    paths = ["/todos/", f"/todos/{todo.pk}/", "/stats/", "/report/", "/api/todos/", "/session/"]
    for p in paths:
        assert client.get(p).status_code == 200
    docs = documents(traces)
    assert [d["request"]["path"] for d in docs] == paths
    for document in docs:
        assert _mentions_trace_table(document) == []
        assert "kolo_django.trace" not in {e["model"] for e in events(document, "orm")}
        assert "kolo_django_trace" not in json.dumps(document)
    for obj, document in zip(traces.order_by("created_at", "id"), docs, strict=True):
        assert obj.query_count == len(events(document, "sql"))


def test_own_writes_are_not_recorded(client: Client, traces: Any, seeded: None) -> None:
    _own_writes_stay_out(client, traces)


@pytest.mark.django_db(transaction=True)
def test_own_writes_are_not_recorded_in_autocommit(traces: Any) -> None:
    from django.core.management import call_command

    call_command("seed_example", todos=10, stdout=open("/dev/null", "w"))
    _own_writes_stay_out(Client(), traces)


@pytest.mark.django_db(transaction=True)
def test_pruning_is_not_recorded(traces: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(storage, "PRUNE_EVERY", 1)
    client = Client()
    with override_settings(KOLO_DJANGO={**RECORD, "RETENTION_MAX_TRACES": 2}):
        paths = [f"/todos/{n}/" for n in range(1, 6)]
        for p in paths:
            client.get(p)
    # Pruning ran after every save and kept the newest two.
    kept = documents(traces)
    assert [d["request"]["path"] for d in kept] == paths[-2:]
    for document in kept:
        assert _mentions_trace_table(document) == []
        assert [e["statement"] for e in events(document, "sql")] == ["SELECT"]
