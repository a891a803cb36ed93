"""Async views under the ASGI handler, alone and concurrently."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.http import HttpRequest, JsonResponse
from django.test import AsyncClient, override_settings
from django.urls import include, path

from kolo_django.trace import decode_value
from tests.helpers_recording import documents, events


async def _async_todos(request: HttpRequest) -> JsonResponse:
    from todos.models import Todo

    marker = request.GET["marker"]
    first_pk = int(request.GET["from"])
    matching = await Todo.objects.filter(title__contains=marker).acount()
    # Let the other requests run between this request's queries.
    await asyncio.sleep(0.01)
    pks = [todo.pk async for todo in Todo.objects.filter(pk__gte=first_pk).order_by("pk")[:3]]
    return JsonResponse({"marker": marker, "matching": matching, "pks": pks})


def _summarise(pks: list[int]) -> int:
    return len(pks)


async def _staggered(request: HttpRequest) -> JsonResponse:
    index = int(request.GET["i"])
    # The first request to start is the first to finish.
    await asyncio.sleep(0.003 * index)
    return JsonResponse({"i": index, "n": _summarise([index])})


urlpatterns = [
    path("async/", _async_todos),
    path("staggered/", _staggered),
    path("", include("example.urls")),
]

pytestmark = pytest.mark.urls(__name__)


def _gather(paths: list[str]) -> list[Any]:
    async def run() -> list[Any]:
        client = AsyncClient()
        return await asyncio.gather(*(client.get(p) for p in paths))

    return async_to_sync(run)()


def _sql_params(document: dict[str, Any]) -> list[Any]:
    return [e["params"] for e in events(document, "sql")]


def test_async_view_is_recorded(traces: Any, seeded: None) -> None:
    from todos.models import Todo

    first = Todo.objects.order_by("pk").first().pk
    (response,) = _gather([f"/async/?marker=%231&from={first}"])
    assert response.status_code == 200
    (document,) = documents(traces)
    assert document["request"]["path"] == "/async/"
    assert document["request"]["query"] == {"marker": ["#1"], "from": [str(first)]}
    assert document["response"]["json"] == response.json()
    count, select = events(document, "sql")
    assert "COUNT" in count["sql"].upper() and count["params"] == ["%#1%"]
    assert select["params"][0] == first
    assert select["rows_in"] == "orm" and select["rows_read"] == len(response.json()["pks"])
    (rows,) = events(document, "orm", model="todos.todo", source="query")
    backing = events(document, "orm", model="todos.todo", source="backing")
    backed = [row[0] for event in backing for row in event["rows"]]
    assert backed
    # A row the count's backing read recorded is not recorded again.
    pks = response.json()["pks"]
    assert [row[0] for row in rows["rows"]] == [pk for pk in pks if pk not in backed]
    assert set(pks) <= set(backed) | {row[0] for row in rows["rows"]}
    (obj,) = traces.all()
    assert (obj.method, obj.status_code, obj.query_count) == ("GET", 200, 2)


def test_concurrent_requests_keep_their_own_events(traces: Any, seeded: None) -> None:
    from todos.models import Todo

    pks = list(Todo.objects.order_by("pk").values_list("pk", flat=True))
    paths = [f"/async/?marker=req{i}x&from={pks[i * 3]}" for i in range(10)]
    responses = _gather(paths)
    assert [r.status_code for r in responses] == [200] * 10
    docs = documents(traces)
    assert len(docs) == 10
    # The requests really ran interleaved, not one after the other.
    spans = sorted(
        (decode_value(d["started_at"]).timestamp(), d["duration_ms"] / 1000) for d in docs
    )
    assert any(spans[i + 1][0] < spans[i][0] + spans[i][1] for i in range(len(spans) - 1))
    by_marker = {d["request"]["query"]["marker"][0]: d for d in docs}
    assert sorted(by_marker) == sorted(f"req{i}x" for i in range(10))
    for i in range(10):
        document = by_marker[f"req{i}x"]
        assert document["request"]["path"] == "/async/"
        assert document["response"]["json"]["marker"] == f"req{i}x"
        # Exactly this request's two queries, with this request's parameters.
        count, select = events(document, "sql")
        assert count["params"] == [f"%req{i}x%"]
        assert select["params"][0] == pks[i * 3]
        (rows,) = events(document, "orm", model="todos.todo", source="query")
        assert [row[0] for row in rows["rows"]] == pks[i * 3 : i * 3 + 3]


def test_sync_views_under_asgi(traces: Any, seeded: None) -> None:
    from todos.models import Todo

    pk = Todo.objects.order_by("pk").first().pk
    paths = ["/stats/", "/report/", f"/api/todos/{pk}/", "/todos/999999/", "/api/todos/?done=true"]
    responses = _gather(paths)
    assert [r.status_code for r in responses] == [200, 200, 200, 404, 200]
    docs = {d["request"]["path"]: d for d in documents(traces)}
    assert len(docs) == 5
    assert docs[f"/api/todos/{pk}/"]["response"]["json"]["id"] == pk
    assert docs["/api/todos/"]["request"]["query"] == {"done": ["true"]}
    assert docs["/todos/999999/"]["response"]["status_code"] == 404
    assert events(docs["/stats/"], "orm", source="backing")
    assert events(docs["/report/"], "sql", origin="raw")


@override_settings(
    KOLO_DJANGO={"ENABLED": True, "RECORD_DURING_TESTS": True, "CALLS_INCLUDE": [__name__]}
)
def test_concurrent_call_capture(traces: Any, db: None) -> None:
    _gather([f"/staggered/?i={i}" for i in range(6)])
    docs = documents(traces)
    assert len(docs) == 6
    for document in docs:
        calls = [e for e in document["events"] if e["type"] == "call"]
        returns = {e["id"]: e for e in document["events"] if e["type"] == "return"}
        # One call per coroutine, however often it was suspended and resumed,
        # and the calls after the first request finished are still there.
        assert [c["function"] for c in calls] == ["_staggered", "_summarise"]
        view, helper = calls
        assert helper["parent"] == view["id"]
        assert returns[helper["id"]]["value"] == "1"
        assert returns[view["id"]]["value"] == "<JsonResponse status_code=200>"
