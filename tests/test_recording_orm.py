"""ORM rows and raw SQL rows in the trace: what generation needs to seed a database."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.db.models import Sum
from django.http import HttpRequest, JsonResponse
from django.test import Client, override_settings
from django.urls import path

from tests.helpers_recording import events, only_trace


def _select_related(request: HttpRequest) -> JsonResponse:
    from todos.models import Todo

    todos = list(Todo.objects.select_related("todo_list").order_by("pk")[:5])
    return JsonResponse({"lists": [t.todo_list.name for t in todos]})


def _prefetch(request: HttpRequest) -> JsonResponse:
    from todos.models import Todo

    todos = list(Todo.objects.prefetch_related("tags").order_by("pk")[:10])
    return JsonResponse({"tags": [[tag.slug for tag in t.tags.all()] for t in todos]})


def _tags_each(request: HttpRequest) -> JsonResponse:
    from todos.models import Tag, Todo

    # The N+1 loop of a page: one M2M manager query per todo, either way round.
    todos = list(Todo.objects.order_by("pk")[:6])
    tags = {t.pk: sorted(tag.slug for tag in t.tags.all()) for t in todos}
    tag = Tag.objects.order_by("pk").first()
    holders = sorted(todo.pk for todo in tag.todos.all()) if tag else []
    urgent = Todo.objects.filter(tags__slug="urgent", done=False).exists()
    return JsonResponse({"tags": tags, "holders": holders, "urgent": urgent})


def _aggregates(request: HttpRequest) -> JsonResponse:
    from todos.models import Todo, TodoList

    # Unfiltered on purpose: nothing but the base table is in the query yet.
    kind = request.GET["kind"]
    if kind == "count":
        value: Any = Todo.objects.count()
    elif kind == "exists":
        value = TodoList.objects.exists()
    elif kind == "aggregate":
        value = str(Todo.objects.aggregate(total=Sum("estimate_hours"))["total"])
    elif kind == "counts":
        # The page's rows, its paginator count, then a narrower count.
        page = list(Todo.objects.order_by("pk")[:3])
        value = [len(page), Todo.objects.count(), Todo.objects.filter(done=False).count()]
    else:
        value = list(TodoList.objects.values_list("name", flat=True))
    return JsonResponse({"value": value})


def _count_first(request: HttpRequest) -> JsonResponse:
    from todos.models import Todo

    # A paginator's order: the count, then the page; or the count, then a write.
    total = Todo.objects.count()
    then = request.GET["then"]
    if then == "page":
        page = [t.title for t in Todo.objects.order_by("pk")[:5]]
        return JsonResponse({"total": total, "page": page})
    first = Todo.objects.order_by("pk").first()
    if then == "update":
        first.title = "Changed after the count"
        first.save()
    else:
        Todo.objects.all().delete()
    return JsonResponse({"total": total})


def _raw(request: HttpRequest) -> JsonResponse:
    how = request.GET.get("how", "fetchall")
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, title FROM todos_todo WHERE id >= %s ORDER BY id", [0])
        if how == "fetchall":
            rows = cursor.fetchall()
        elif how == "fetchmany":
            rows = cursor.fetchmany(7) + cursor.fetchmany(7)
        elif how == "fetchone":
            rows = [cursor.fetchone(), cursor.fetchone()]
        else:
            rows = list(cursor)
    return JsonResponse({"ids": [row[0] for row in rows]})


urlpatterns = [
    path("select-related/", _select_related),
    path("prefetch/", _prefetch),
    path("tags-each/", _tags_each),
    path("aggregates/", _aggregates),
    path("count-first/", _count_first),
    path("raw/", _raw),
]

pytestmark = pytest.mark.urls(__name__)


def rows_of(event: dict[str, Any], field: str) -> list[Any]:
    index = event["fields"].index(field)
    return [row[index] for row in event["rows"]]


def test_select_related_keeps_rows_of_both_models(
    client: Client, traces: Any, seeded: None
) -> None:
    from todos.models import Todo

    client.get("/select-related/")
    _obj, document = only_trace(traces)
    expected = list(Todo.objects.order_by("pk")[:5])
    (todos,) = events(document, "orm", model="todos.todo", source="query")
    (lists,) = events(document, "orm", model="todos.todolist", source="query")
    assert rows_of(todos, "id") == [t.pk for t in expected]
    assert rows_of(todos, "todo_list_id") == [t.todo_list_id for t in expected]
    # Each list once: a row read again adds nothing to the trace.
    assert rows_of(lists, "id") == list(dict.fromkeys(t.todo_list_id for t in expected))
    # The custom ColorField keeps Django's own string form.
    assert rows_of(lists, "color")[0] == {"$t": "field", "v": str(expected[0].todo_list.color)}
    # One query, both models' rows from it.
    assert len(events(document, "sql")) == 1


def test_prefetch_keeps_tags_and_through_rows(client: Client, traces: Any, seeded: None) -> None:
    from todos.models import Todo

    client.get("/prefetch/")
    _obj, document = only_trace(traces)
    first_ten = list(Todo.objects.order_by("pk")[:10])
    links = Todo.tags.through.objects.filter(todo__in=first_ten)
    assert links.exists(), "the seed gives some of the first ten todos tags"
    (tags,) = events(document, "orm", model="todos.tag", source="query")
    assert set(rows_of(tags, "id")) == set(links.values_list("tag_id", flat=True))
    (through,) = events(document, "orm", model="todos.todo_tags", source="backing")
    assert sorted(
        zip(rows_of(through, "todo_id"), rows_of(through, "tag_id"), strict=True)
    ) == sorted(links.values_list("todo_id", "tag_id"))
    # The backing read is the recorder's: it is not an SQL event.
    assert len(events(document, "sql")) == 2


def test_m2m_manager_links_come_from_its_own_rows(
    client: Client, traces: Any, seeded: None
) -> None:
    from todos.models import Tag, Todo

    client.get("/tags-each/")
    _obj, document = only_trace(traces)
    through = Todo.tags.through.objects
    todos = list(Todo.objects.order_by("pk")[:6])
    tag = Tag.objects.order_by("pk").first()
    expected = set(through.filter(todo__in=todos).values_list("todo_id", "tag_id"))
    expected |= set(through.filter(tag=tag).values_list("todo_id", "tag_id"))
    links = [
        e
        for e in events(document, "orm", model="todos.todo_tags", source="backing")
        if e["fields"] == ["todo_id", "tag_id"]
    ]
    recorded = {tuple(row) for e in links for row in e["rows"]}
    assert expected and expected <= recorded
    # The link table is read by the view's own queries, not by one more each:
    # 1 page + 6 + 1 manager queries, 1 first tag, 1 exists().
    assert len(events(document, "sql")) == 10


def test_exists_keeps_one_joined_row_of_each_table(
    client: Client, traces: Any, seeded: None
) -> None:
    from todos.models import Todo

    client.get("/tags-each/")
    _obj, document = only_trace(traces)
    (exists_links,) = [
        e
        for e in events(document, "orm", model="todos.todo_tags", source="backing")
        if "id" in e["fields"]
    ]
    ((link,),) = [
        [dict(zip(exists_links["fields"], row, strict=True))] for row in exists_links["rows"]
    ]
    todo = Todo.objects.get(pk=link["todo_id"])
    # The rows kept come from one joined row: that todo is open, that tag urgent.
    assert not todo.done
    assert todo.tags.filter(pk=link["tag_id"], slug="urgent").exists()


@pytest.mark.parametrize(
    ("kind", "model", "expected_rows"),
    [
        ("count", "todos.todo", 60),
        # exists() depends on one row only.
        ("exists", "todos.todolist", 1),
        ("aggregate", "todos.todo", 60),
        ("values", "todos.todolist", 3),
    ],
)
def test_unfiltered_aggregates_have_backing_rows(
    client: Client, traces: Any, seeded: None, kind: str, model: str, expected_rows: int
) -> None:
    client.get(f"/aggregates/?kind={kind}")
    _obj, document = only_trace(traces)
    assert not events(document, "orm", source="query")
    (backing,) = events(document, "orm", model=model, source="backing")
    assert len(backing["rows"]) == expected_rows
    assert len(events(document, "sql")) == 1


@override_settings(
    KOLO_DJANGO={"ENABLED": True, "RECORD_DURING_TESTS": True, "MAX_BACKING_ROWS": 10}
)
def test_backing_rows_are_bounded(client: Client, traces: Any, seeded: None) -> None:
    client.get("/aggregates/?kind=count")
    _obj, document = only_trace(traces)
    (backing,) = events(document, "orm", model="todos.todo", source="backing")
    assert len(backing["rows"]) == 10


def test_rows_are_not_stored_twice(client: Client, traces: Any, seeded: None) -> None:
    from todos.models import Todo

    client.get("/aggregates/?kind=counts")
    _obj, document = only_trace(traces)
    (page,) = events(document, "orm", model="todos.todo", source="query")
    (backing,) = events(document, "orm", model="todos.todo", source="backing")
    pks = sorted(Todo.objects.values_list("pk", flat=True))
    # The whole table once: the page's rows as query rows, the rest as backing
    # rows; the narrower count reads no backing rows of a table read whole.
    assert rows_of(page, "id") == pks[:3]
    assert sorted(rows_of(backing, "id")) == pks[3:]
    assert len(events(document, "sql")) == 3


def test_the_projects_query_log_holds_its_own_queries_only(
    client: Client, traces: Any, seeded: None
) -> None:
    """What DEBUG's ``connection.queries``, ``assertNumQueries`` and toolbars
    count: not the backing read, nor the trace's insert (in the request here,
    under tests)."""
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        client.get("/aggregates/?kind=counts")
    _obj, document = only_trace(traces)
    assert events(document, "orm", model="todos.todo", source="backing")
    assert len(events(document, "sql")) == 3
    logged = [query["sql"] for query in captured.captured_queries]
    assert len(logged) == 3, logged
    assert not any("kolo_django_trace" in sql for sql in logged)


def _position(document: dict[str, Any], event: dict[str, Any]) -> int:
    return next(i for i, e in enumerate(document["events"]) if e is event)


def _count_first_trace(client: Client, traces: Any, then: str) -> dict[str, Any]:
    response = client.get(f"/count-first/?then={then}")
    assert response.status_code == 200
    return only_trace(traces)[1]


def test_rows_behind_a_count_wait_for_the_page(client: Client, traces: Any, seeded: None) -> None:
    from todos.models import Todo

    document = _count_first_trace(client, traces, "page")
    pks = sorted(Todo.objects.values_list("pk", flat=True))
    (page,) = events(document, "orm", model="todos.todo", source="query")
    (backing,) = events(document, "orm", model="todos.todo", source="backing")
    # Read when the request ended, after the page: its rows are not read twice.
    assert rows_of(page, "id") == pks[:5]
    assert sorted(rows_of(backing, "id")) == pks[5:]
    assert _position(document, backing) > _position(document, page)


@pytest.mark.parametrize("then", ["update", "delete"])
def test_rows_behind_a_count_are_read_before_a_write(
    client: Client, traces: Any, seeded: None, then: str
) -> None:
    from todos.models import Todo

    titles = dict(Todo.objects.values_list("pk", "title"))
    document = _count_first_trace(client, traces, then)
    (backing,) = events(document, "orm", model="todos.todo", source="backing")
    (write,) = [e for e in events(document, "sql") if e["statement"] in ("UPDATE", "DELETE")][:1]
    assert _position(document, backing) < _position(document, write)
    # Every row as the count saw it, not yet changed nor deleted: as backing
    # rows, or as the rows .first() (and delete()'s collector) read before.
    recorded: dict[int, str] = {}
    for event in events(document, "orm", model="todos.todo"):
        assert _position(document, event) < _position(document, write)
        for pk, title in zip(rows_of(event, "id"), rows_of(event, "title"), strict=True):
            assert pk not in recorded
            recorded[pk] = title
    assert recorded == titles


@pytest.mark.django_db(transaction=True)
def test_rows_behind_a_count_outside_a_transaction(client: Client, traces: Any) -> None:
    from django.core.management import call_command
    from todos.models import Todo

    call_command("seed_example", todos=60, stdout=open("/dev/null", "w"))
    titles = dict(Todo.objects.values_list("pk", "title"))
    assert not connection.in_atomic_block
    document = _count_first_trace(client, traces, "update")
    (backing,) = events(document, "orm", model="todos.todo", source="backing")
    recorded = dict(zip(rows_of(backing, "id"), rows_of(backing, "title"), strict=True))
    assert recorded == {pk: title for pk, title in titles.items() if pk != min(titles)}
    assert Todo.objects.get(pk=min(titles)).title == "Changed after the count"


@pytest.mark.parametrize("how", ["fetchall", "fetchmany", "fetchone", "iterate"])
def test_raw_cursor_rows(client: Client, traces: Any, seeded: None, how: str) -> None:
    from todos.models import Todo

    response = client.get(f"/raw/?how={how}")
    _obj, document = only_trace(traces)
    (sql,) = events(document, "sql")
    assert sql["origin"] == "raw"
    assert sql["params"] == [0]
    assert [c.lower() for c in sql["columns"]] == ["id", "title"]
    fetched = response.json()["ids"]
    # Exactly the rows the view fetched, in order.
    assert [row[0] for row in sql["rows"]] == fetched
    assert sql["rows_read"] == len(fetched)
    assert "rows_truncated" not in sql
    titles = dict(Todo.objects.values_list("pk", "title"))
    assert all(row[1] == titles[row[0]] for row in sql["rows"])
    (backing,) = events(document, "orm", model="todos.todo", source="backing")
    assert len(backing["rows"]) == 60


@override_settings(
    KOLO_DJANGO={"ENABLED": True, "RECORD_DURING_TESTS": True, "MAX_ROWS_PER_QUERY": 25}
)
@pytest.mark.parametrize("how", ["fetchall", "fetchmany", "iterate"])
def test_raw_rows_beyond_the_limit_are_cut(
    client: Client, traces: Any, seeded: None, how: str
) -> None:
    response = client.get(f"/raw/?how={how}")
    assert len(response.json()["ids"]) in (60, 14)
    _obj, document = only_trace(traces)
    (sql,) = events(document, "sql")
    fetched = response.json()["ids"]
    assert [row[0] for row in sql["rows"]] == fetched[:25]
    assert sql["rows_read"] == len(fetched)
    assert sql.get("rows_truncated", False) is (len(fetched) > 25)


@override_settings(
    KOLO_DJANGO={"ENABLED": True, "RECORD_DURING_TESTS": True, "MAX_ROWS_PER_QUERY": 3}
)
def test_model_query_rows_are_stored_once(client: Client, traces: Any, seeded: None) -> None:
    client.get("/select-related/")
    _obj, document = only_trace(traces)
    (sql,) = events(document, "sql")
    # The rows became instances: they are in the orm events, not copied here.
    assert "rows" not in sql and sql["rows_in"] == "orm"
    assert sql["rows_read"] == 5
    assert "rows_truncated" not in sql
    (todos,) = events(document, "orm", model="todos.todo", source="query")
    assert len(todos["rows"]) == 5


def test_links_without_ids_become_m2m_adds(client: Client, traces: Any, seeded: None) -> None:
    from todos.models import Todo

    from kolo_django.generation.api import generate

    client.get("/tags-each/")
    _obj, document = only_trace(traces)
    source, _ = generate([document], style="unittest")
    first = Todo.objects.order_by("pk").first()
    tagged = [t for t in Todo.objects.order_by("pk")[:6] if t.tags.exists()]
    assert first is not None and tagged
    # Each todo of the page that has tags gets them linked in the seed.
    assert source.count(".tags.add(") >= len(tagged)
