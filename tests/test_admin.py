"""The trace admin: list, filters, search, detail page, test generation,
delete and prune, and who may see any of it."""

from __future__ import annotations

import datetime as dt
import html
import re
from typing import Any

import pytest
from django.contrib.admin.utils import quote
from django.contrib.auth.models import Permission, User
from django.db import connection, connections
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext

from kolo_django import admin as trace_admin
from kolo_django import storage, trace
from kolo_django.generation.verify import VerifyResult
from kolo_django.models import Trace

LIST_URL = "/admin/kolo_django/trace/"
SECRET_PATH = "/private-ledger/"
SECRET_SQL = 'SELECT "ledger"."balance" FROM "ledger_entries"'


def change_url(pk: str) -> str:
    return f"{LIST_URL}{quote(pk)}/change/"


def download_url(pk: str) -> str:
    return f"{LIST_URL}{quote(pk)}/download/"


def make_document(
    *,
    method: str = "GET",
    path: str = "/todos/",
    status: int = 200,
    view_name: str = "todo-list",
    age: dt.timedelta = dt.timedelta(0),
    events: list[dict[str, Any]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    started = dt.datetime.now(dt.timezone.utc) - age
    document = {
        "schema_version": trace.SCHEMA_VERSION,
        "id": trace.new_trace_id(int(started.timestamp() * 1000)),
        "started_at": trace.encode_value(started),
        "duration_ms": 12.5,
        "request": {
            "method": method,
            "scheme": "http",
            "host": "testserver",
            "path": path,
            "query_string": "",
            "query": {},
            "headers": {"Accept": "text/html"},
            "body": {"kind": "empty"},
            "user": {"authenticated": False},
            "resolver": {"view": "todos.views.todo_list", "view_name": view_name},
        },
        "response": {"status_code": status, "reason": "OK", "redirect": None, "headers": {}},
        "exception": None,
        "events": events or [],
        "dropped_events": 0,
        "faults": [],
        "databases": {"default": "sqlite"},
        "environment": {},
    }
    document.update(extra)
    return document


def store(**kwargs: Any) -> Trace:
    return storage.save_document(make_document(**kwargs))


def sql_event(sql: str, *, rows: list[list[Any]] | None = None, t: float = 1.0) -> dict[str, Any]:
    return {
        "type": "sql",
        "t": t,
        "alias": "default",
        "vendor": "sqlite",
        "sql": sql,
        "params": [],
        "many": False,
        "statement": sql.split()[0].upper(),
        "origin": "orm",
        "duration_ms": 0.2,
        "rowcount": -1,
        "columns": ["balance"],
        "rows": rows if rows is not None else [[100]],
        "rows_read": len(rows) if rows is not None else 1,
    }


def text(response: Any) -> str:
    return html.unescape(response.content.decode())


def replayed(source: str) -> list[str]:
    """The paths a generated test requests, in order (quotes depend on the formatter)."""
    return re.findall(r"client\.\w+\(\s*['\"]([^'\"]+)['\"]", source)


def listed(response: Any) -> set[str]:
    return {obj.pk for obj in response.context["cl"].result_list}


@pytest.fixture
def recorded(client: Client, traces: Any, seeded: None) -> Trace:
    """A real trace: the example project's todo list."""
    response = client.get("/todos/")
    assert response.status_code == 200
    return traces.get(path="/todos/")


@pytest.fixture
def secret(traces: Any) -> Trace:
    """A trace whose path and SQL must never reach someone without access."""
    return store(path=SECRET_PATH, events=[sql_event(SECRET_SQL)])


def staff(username: str, *codenames: str) -> User:
    user = User.objects.create_user(username, password="pw", is_staff=True)
    for codename in codenames:
        user.user_permissions.add(Permission.objects.get(codename=codename))
    return user


# ------------------------------------------------------------------ the list


def test_changelist_shows_the_summary_columns_newest_first(admin_client: Client, traces: Any):
    old = store(path="/old/", age=dt.timedelta(hours=2))
    new = store(method="POST", path="/todos/new/", status=302, view_name="todo-create")
    response = admin_client.get(LIST_URL)
    assert response.status_code == 200
    headers = [str(h["text"]).lower() for h in response.context["result_headers"]]
    assert headers[1:] == [
        "id",
        "method",
        "path",
        "status",
        "duration",
        "queries",
        "size",
        "created",
    ]
    assert [obj.pk for obj in response.context["cl"].result_list] == [new.pk, old.pk]
    page = text(response)
    for value in (new.pk, "POST", "/todos/new/", "302", "12.5 ms", old.pk, "/old/"):
        assert value in page


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("method=POST", {"post"}),
        ("status_class=2xx", {"ok", "old"}),
        ("status_class=3xx", {"post"}),
        ("status_class=4xx", {"missing"}),
        ("status_class=5xx", {"error"}),
        ("view_name=todo-detail", {"missing"}),
        ("created at: Past 7 days", {"ok", "post", "missing", "error"}),
        ("created at: Today", {"ok", "post", "missing", "error"}),
    ],
)
def test_each_filter_narrows_the_list(
    admin_client: Client, traces: Any, query: str, expected: set[str]
):
    stored = {
        "ok": store(),
        "old": store(path="/old/", age=dt.timedelta(days=10)),
        "post": store(method="POST", status=302, view_name="todo-create"),
        "missing": store(path="/todos/9/", status=404, view_name="todo-detail"),
        "error": store(path="/boom/", status=500, view_name="boom"),
    }
    everything = admin_client.get(LIST_URL)
    assert listed(everything) == {obj.pk for obj in stored.values()}
    if query.startswith("created at: "):
        # The date filter's own links carry aware datetimes; follow one.
        (spec,) = [f for f in everything.context["cl"].filter_specs if f.title == "created at"]
        choices = spec.choices(everything.context["cl"])
        query = next(c["query_string"] for c in choices if c["display"] == query[12:])[1:]
    response = admin_client.get(f"{LIST_URL}?{query}")
    assert response.status_code == 200
    assert listed(response) == {stored[name].pk for name in expected}


def test_the_filters_offer_the_stored_values(admin_client: Client, traces: Any):
    store(method="PATCH", view_name="api-todo-detail")
    page = text(admin_client.get(LIST_URL))
    for choice in ("PATCH", "api-todo-detail", "4xx client error", "Past 7 days"):
        assert choice in page


def test_search_by_path_and_by_id(admin_client: Client, traces: Any):
    todos = store(path="/todos/")
    stats = store(path="/stats/")
    assert listed(admin_client.get(LIST_URL, {"q": "stat"})) == {stats.pk}
    assert listed(admin_client.get(LIST_URL, {"q": todos.pk})) == {todos.pk}
    # Any case, and the beginning of an id, as someone copies it.
    assert listed(admin_client.get(LIST_URL, {"q": todos.pk.lower()})) == {todos.pk}
    assert todos.pk in listed(admin_client.get(LIST_URL, {"q": todos.pk[:12]}))
    assert listed(admin_client.get(LIST_URL, {"q": "trc_ZZZZ"})) == set()


def test_the_list_never_reads_documents(admin_client: Client, traces: Any):
    for n in range(3):
        store(path=f"/todos/{n}/", events=[sql_event(SECRET_SQL)])
    connection = connections[storage.alias()]
    with CaptureQueriesContext(connection) as captured:
        for query in ("", "?status_class=2xx", "?method=GET&q=todos", "?o=3"):
            assert admin_client.get(LIST_URL + query).status_code == 200
    trace_queries = [q["sql"] for q in captured.captured_queries if "kolo_django_trace" in q["sql"]]
    assert trace_queries
    assert not [sql for sql in trace_queries if "document" in sql]


# ------------------------------------------------------------ the detail page


def test_detail_of_a_recorded_request_shows_request_sql_rows_and_timeline(
    admin_client: Client, recorded: Trace
):
    response = admin_client.get(change_url(recorded.pk))
    assert response.status_code == 200
    page = text(response)
    assert "GET" in page and "http://testserver/todos/" in page
    assert "todos.views.todo_list" in page and "anonymous" in page
    assert "todos/todo_list.html" in page  # templates rendered
    # SQL reindented by sqlparse, with the rows the view read.
    q = connection.ops.quote_name
    assert f"SELECT COUNT(*) AS {q('__count')}\nFROM {q('todos_todo')}" in page
    count_rows = [
        e
        for e in response.context["timeline"]["events"]
        if e["type"] == "sql" and e["sql"].startswith("SELECT COUNT(*)")
    ]
    assert count_rows[0]["columns"] == ["__count"] and count_rows[0]["rows"] == [["60"]]
    assert '<details><summary><span class="kolo-tag">SQL</span>' in response.content.decode()
    # ORM rows as a table, and the view's own call in the tree.
    timeline = response.context["timeline"]
    kinds = {e["type"] for e in timeline["events"]}
    assert {"sql", "orm", "call", "return", "template"} <= kinds
    orm = next(e for e in timeline["events"] if e["type"] == "orm")
    assert orm["model"].startswith("todos.") and orm["fields"] and orm["rows"]
    assert timeline["total"] == recorded.event_count


def test_calls_are_indented_by_depth_with_their_locals(admin_client: Client, traces: Any):
    events = [
        {"type": "call", "id": 1, "parent": None, "depth": 0, "function": "todo_list",
         "module": "todos.views", "file": "todos/views.py", "line": 27,
         "locals": {"request": "<WSGIRequest: GET '/todos/'>"}},
        {"type": "call", "id": 2, "parent": 1, "depth": 1, "function": "helper",
         "module": "todos.views", "file": "todos/views.py", "line": 40,
         "locals": {"limit": "50"}},
        sql_event("SELECT 1"),
        {"type": "return", "id": 2, "value": "'done'", "locals": {"limit": "50"}},
        {"type": "return", "id": 1, "exception": "ValueError: bad", "locals": {}},
    ]  # fmt: skip
    obj = store(events=events)
    response = admin_client.get(change_url(obj.pk))
    shown = response.context["timeline"]["events"]
    assert [(e["type"], e["indent"]) for e in shown] == [
        ("call", 0),
        ("call", 1),
        ("sql", 2),
        ("return", 1),
        ("return", 0),
    ]
    assert shown[3]["function"] == "helper" and shown[3]["value"] == "'done'"
    assert shown[4]["exception"] == "ValueError: bad"
    page = text(response)
    assert "todos/views.py:27" in page and "<WSGIRequest: GET '/todos/'>" in page
    assert "raised ValueError: bad" in page


def test_detail_shows_bodies_redirects_and_every_event_type(admin_client: Client, traces: Any):
    events = [
        {"type": "write", "op": "create", "model": "todos.todo", "alias": "default",
         "pk": 7, "values": {"title": "Buy milk"}, "update_fields": None},
        {"type": "http", "library": "requests", "method": "GET",
         "url": "http://api.example.test/weather", "status": 200, "duration_ms": 3.0,
         "request_headers": {}, "response_headers": {"Content-Type": "application/json"},
         "request": {}, "response": {"size": 14, "body": '{"temp": 21}', "json": {"temp": 21}}},
        {"type": "mail", "subject": "Shared with you", "from_email": "todos@example.com",
         "to": ["bob@example.com"], "cc": [], "bcc": [], "reply_to": [],
         "body": "Have a look", "alternatives": [], "attachments": ["list.pdf"]},
        {"type": "log", "logger": "todos", "level": "WARNING", "message": "disk almost full",
         "location": "todos/views.py:12"},
        {"type": "exception", "exception_type": "builtins.RuntimeError", "message": "boom",
         "traceback": "Traceback (most recent call last):\n  File ...\nRuntimeError: boom"},
        {"type": "teleport", "destination": "mars"},
    ]  # fmt: skip
    obj = store(
        method="POST",
        status=302,
        events=events,
        request={
            "method": "POST",
            "path": "/api/todos/",
            "query_string": "page=2",
            "query": {"page": ["2"]},
            "headers": {"Content-Type": "application/json"},
            "content_type": "application/json",
            "body": {"kind": "json", "json": {"title": "Buy milk", "tags": [1, 2]}, "size": 40},
            "user": {"authenticated": True, "model": "auth.user", "pk": 1, "username": "alice"},
            "resolver": {"view": "todos.api.todo_collection", "view_name": "api-todo-list"},
        },
        response={
            "status_code": 302,
            "reason": "Found",
            "headers": {"Location": "/todos/7/"},
            "redirect": "/todos/7/",
            "json": {"id": 7, "title": "Buy milk"},
        },
        exception={"type": "builtins.RuntimeError", "message": "boom", "traceback": "Trace…"},
    )
    page = text(admin_client.get(change_url(obj.pk)))
    assert "/api/todos/?page=2" in page
    assert '{\n  "title": "Buy milk",\n  "tags": [\n    1,\n    2\n  ]\n}' in page
    assert "alice (pk 1, auth.user)" in page
    assert "Redirects to <code>/todos/7/</code>" in response_html(admin_client, obj)
    assert '"id": 7' in page
    for fragment in (
        "create",
        "Buy milk",
        "http://api.example.test/weather",
        '"temp": 21',
        "Shared with you",
        "bob@example.com",
        "list.pdf",
        "disk almost full",
        "builtins.RuntimeError",
        "RuntimeError: boom",
        "teleport",
        "mars",
    ):
        assert fragment in page, fragment


def response_html(client: Client, obj: Trace) -> str:
    return client.get(change_url(obj.pk)).content.decode()


def test_large_traces_are_paginated_filtered_and_capped(admin_client: Client, traces: Any):
    events: list[dict[str, Any]] = []
    for n in range(450):
        if n % 3 == 0:
            events.append(sql_event(f"SELECT {n} FROM big"))
        else:
            events.append({"type": "template", "name": f"t{n}.html"})
    events[1] = {
        "type": "call",
        "id": 1,
        "depth": 0,
        "function": "f",
        "module": "m",
        "file": "m.py",
        "line": 1,
        "locals": {"blob": "x" * 5000},
    }
    obj = store(events=events)
    first = admin_client.get(change_url(obj.pk))
    timeline = first.context["timeline"]
    assert len(timeline["events"]) == trace_admin.EVENTS_PER_PAGE
    assert timeline["events"][0]["n"] == 1
    assert "4700 more characters" in text(first)  # 5000 - MAX_VALUE_CHARS
    last = admin_client.get(change_url(obj.pk), {"page": 3}).context["timeline"]
    assert [e["n"] for e in last["events"]] == list(range(401, 451))
    only_sql = admin_client.get(change_url(obj.pk), {"type": "sql"}).context["timeline"]
    assert len(only_sql["events"]) == 150 and {e["type"] for e in only_sql["events"]} == {"sql"}
    templates = admin_client.get(change_url(obj.pk), {"type": "template"})
    assert len(templates.context["timeline"]["events"]) == trace_admin.EVENTS_PER_PAGE
    assert "?page=2&amp;type=template#timeline" in templates.content.decode()


def test_sql_formatting_has_a_time_budget(monkeypatch: pytest.MonkeyPatch):
    formatter = trace_admin.SqlFormatter(budget_s=0)
    assert formatter("select   1 from   never_seen_before") == "select   1 from   never_seen_before"
    assert formatter.skipped == 1
    formatter = trace_admin.SqlFormatter()
    assert formatter("select 1 from seen") == "SELECT 1\nFROM seen"


def test_a_corrupt_document_still_shows_its_summary(admin_client: Client, traces: Any):
    obj = store(path="/broken/")
    Trace.objects.filter(pk=obj.pk).update(document=b"not zlib")
    response = admin_client.get(change_url(obj.pk))
    assert response.status_code == 200
    assert "cannot be read" in text(response)
    assert response.context["load_error"]


def test_an_unknown_trace_redirects_with_a_message(admin_client: Client, traces: Any):
    response = admin_client.get(change_url("trc_01ARZ3NDEKTSV4RRFFQ69G5FAV"))
    assert response.status_code == 302


# ------------------------------------------------------------ generating tests


@pytest.mark.parametrize("style", ["unittest", "pytest"])
def test_generate_on_the_detail_page(admin_client: Client, recorded: Trace, style: str):
    response = admin_client.get(change_url(recorded.pk), {"style": style})
    generated = response.context["generated"]
    assert not generated["error"]
    compile(generated["source"], "generated.py", "exec")
    assert ("class " in generated["source"]) == (style == "unittest")
    page = text(response)
    assert generated["source"].strip() in page
    assert 'data-kolo-copy="kolo-generated-code"' in page
    assert f"{download_url(recorded.pk)}?style={style}" in page


@pytest.mark.parametrize("setting", ["unittest", "pytest"])
def test_the_test_style_setting_is_preselected(admin_client: Client, traces: Any, setting: str):
    obj = store()
    with override_settings(KOLO_DJANGO={"TEST_STYLE": setting}):
        response = admin_client.get(change_url(obj.pk))
    assert response.context["style"] == setting and response.context["generated"] is None
    assert f'value="{setting}" checked' in response.content.decode()


def test_download_returns_a_python_file(admin_client: Client, recorded: Trace):
    response = admin_client.get(download_url(recorded.pk), {"style": "pytest"})
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="test_todo_list.py"'
    assert response["Content-Type"].startswith("text/x-python")
    compile(response.content.decode(), "test_todo_list.py", "exec")
    assert b"def test_" in response.content


def test_download_refuses_bad_input(admin_client: Client, traces: Any):
    obj = store()
    assert admin_client.get(download_url(obj.pk), {"style": "nose"}).status_code == 400
    unknown = "trc_01ARZ3NDEKTSV4RRFFQ69G5FAV"
    assert admin_client.get(download_url(unknown)).status_code == 404
    assert admin_client.get(f"{LIST_URL}download/").status_code == 400


def test_verify_shows_pass_or_fail_with_the_output(
    admin_client: Client, recorded: Trace, monkeypatch: pytest.MonkeyPatch
):
    ran: list[str] = []

    def fake_verify(source: str, style: str, **kwargs: Any) -> VerifyResult:
        ran.append(source)
        return VerifyResult(False, "E   AssertionError: 200 != 404", ["pytest", "x.py"])

    monkeypatch.setattr(trace_admin, "verify", fake_verify)
    # A GET never runs anything.
    admin_client.get(change_url(recorded.pk), {"style": "pytest", "verify": "1"})
    assert ran == []
    response = admin_client.post(change_url(recorded.pk), {"style": "pytest", "verify": "1"})
    assert response.status_code == 200 and len(ran) == 1
    verification = response.context["generated"]["verification"]
    assert verification["passed"] is False
    page = text(response)
    assert "Failed" in page and "AssertionError: 200 != 404" in page


@pytest.mark.slow
def test_verify_really_runs_the_generated_test(
    admin_client: Client, recorded: Trace, monkeypatch: pytest.MonkeyPatch
):
    # The runner started by verify() must not share this session's PostgreSQL test database.
    monkeypatch.setenv("KOLO_TEST_PG_NAME", "kolo_django_admin_verify")
    response = admin_client.post(change_url(recorded.pk), {"style": "pytest", "verify": "1"})
    verification = response.context["generated"]["verification"]
    assert verification["passed"], verification["output"]
    assert "Passed" in text(response)


def test_action_generates_one_test_from_several_traces(
    admin_client: Client, client: Client, traces: Any, seeded: None
):
    client.get("/stats/")
    client.get("/todos/")
    first, second = traces.order_by("created_at")
    selected = [second.pk, first.pk]  # the order of the selection does not matter
    response = admin_client.post(
        LIST_URL, {"action": "generate_test", "_selected_action": selected, "index": 0}
    )
    assert response.status_code == 200
    assert [row.pk for row in response.context["traces"]] == [first.pk, second.pk]
    source = response.context["generated"]["source"]
    compile(source, "generated.py", "exec")
    assert replayed(source) == ["/stats/", "/todos/"]
    page = text(response)
    assert f"id={first.pk}&id={second.pk}&style=" in page
    # The page's own form switches the style.
    response = admin_client.post(
        LIST_URL,
        {"action": "generate_test", "_selected_action": selected, "style": "unittest"},
    )
    assert response.context["style"] == "unittest"
    assert "class " in response.context["generated"]["source"]
    download = admin_client.get(
        f"{LIST_URL}download/", {"id": [second.pk, first.pk], "style": "pytest"}
    )
    assert download.status_code == 200
    assert download["Content-Disposition"].startswith("attachment; filename=")
    code = download.content.decode()
    compile(code, "generated.py", "exec")
    assert replayed(code) == ["/stats/", "/todos/"]


# ---------------------------------------------------------- delete and prune


def test_delete_selected_action_and_the_delete_page(admin_client: Client, traces: Any):
    doomed, kept, single = store(path="/a/"), store(path="/b/"), store(path="/c/")
    response = admin_client.post(
        LIST_URL,
        {"action": "delete_selected", "_selected_action": [doomed.pk], "post": "yes"},
    )
    assert response.status_code == 302
    assert set(Trace.objects.values_list("pk", flat=True)) == {kept.pk, single.pk}
    delete_url = f"{LIST_URL}{quote(single.pk)}/delete/"
    assert admin_client.get(delete_url).status_code == 200
    response = admin_client.post(delete_url, {"post": "yes"})
    assert response.status_code == 302 and response["Location"] == LIST_URL
    assert list(Trace.objects.values_list("pk", flat=True)) == [kept.pk]


def test_prune_applies_the_retention_settings(admin_client: Client, traces: Any):
    for hours in range(5):
        store(path=f"/p{hours}/", age=dt.timedelta(hours=hours))
    newest = set(Trace.objects.order_by("-created_at").values_list("pk", flat=True)[:2])
    with override_settings(KOLO_DJANGO={"RETENTION_MAX_TRACES": 2, "RETENTION_MAX_AGE_DAYS": None}):
        response = admin_client.post(
            LIST_URL,
            {"action": "prune_traces", "_selected_action": list(newest), "index": 0},
        )
        assert response.status_code == 302 and response["Location"] == f"{LIST_URL}prune/"
        confirm = admin_client.get(f"{LIST_URL}prune/")
        assert confirm.context["would_delete"] == 3
        assert "3 of 5 traces would be deleted" in text(confirm)
        assert Trace.objects.count() == 5  # nothing happens before the POST
        done = admin_client.post(f"{LIST_URL}prune/", follow=True)
    assert set(Trace.objects.values_list("pk", flat=True)) == newest
    assert "Pruned 3 traces" in text(done)


def test_prune_counts_old_traces_too(traces: Any):
    store(age=dt.timedelta(days=30))
    store(age=dt.timedelta(days=1))
    store()
    with override_settings(KOLO_DJANGO={"RETENTION_MAX_TRACES": 1, "RETENTION_MAX_AGE_DAYS": 7}):
        assert trace_admin.prune_count() == 2
        assert storage.prune() == 2
    with override_settings(KOLO_DJANGO={"RETENTION_MAX_TRACES": 5, "RETENTION_MAX_AGE_DAYS": 7}):
        assert trace_admin.prune_count() == 0


def test_traces_cannot_be_added_or_edited(admin_client: Client, traces: Any):
    obj = store()
    assert admin_client.get(f"{LIST_URL}add/").status_code == 403
    page = text(admin_client.get(LIST_URL))
    assert "Add trace" not in page
    response = admin_client.post(change_url(obj.pk), {"path": "/edited/"})
    assert response.status_code == 200
    assert Trace.objects.get(pk=obj.pk).path == "/todos/"


# ----------------------------------------------------------------- permissions


def every_url(obj: Trace) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        ("get", LIST_URL, {}),
        ("get", LIST_URL, {"q": SECRET_PATH}),
        ("get", change_url(obj.pk), {}),
        ("get", change_url(obj.pk), {"style": "pytest"}),
        ("post", change_url(obj.pk), {"style": "pytest", "verify": "1"}),
        ("get", download_url(obj.pk), {"style": "pytest"}),
        ("get", f"{LIST_URL}download/", {"id": obj.pk}),
        ("get", f"{LIST_URL}prune/", {}),
        ("post", f"{LIST_URL}prune/", {}),
        ("post", LIST_URL, {"action": "generate_test", "_selected_action": [obj.pk], "index": 0}),
        ("post", LIST_URL, {"action": "delete_selected", "_selected_action": [obj.pk], "post": "yes"}),
        ("get", f"{LIST_URL}{quote(obj.pk)}/history/", {}),
        ("get", f"{LIST_URL}{quote(obj.pk)}/delete/", {}),
    ]  # fmt: skip


def assert_nothing_leaks(response: Any) -> None:
    body = response.content.decode(errors="replace")
    assert SECRET_PATH not in body and "ledger_entries" not in body


def test_anonymous_users_are_sent_to_the_login_page(client: Client, secret: Trace):
    for method, url, data in every_url(secret):
        response = getattr(client, method)(url, data)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/admin/login/?next="), url
        assert_nothing_leaks(response)
    assert Trace.objects.filter(pk=secret.pk).exists()


def test_logged_in_users_who_are_not_staff_get_the_login_page(
    client: Client, secret: Trace, seeded: None
):
    client.force_login(User.objects.get(username="bob"))
    for method, url, data in every_url(secret):
        response = getattr(client, method)(url, data)
        assert response.status_code == 302, url
        assert_nothing_leaks(response)
    assert Trace.objects.filter(pk=secret.pk).exists()


def test_staff_without_the_view_permission_get_403(
    client: Client, secret: Trace, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(trace_admin, "verify", lambda *a, **k: pytest.fail("verify ran"))
    client.force_login(staff("carol"))
    for method, url, data in every_url(secret):
        response = getattr(client, method)(url, data)
        assert response.status_code == 403, url
        assert_nothing_leaks(response)
    assert Trace.objects.filter(pk=secret.pk).exists()


def test_the_view_permission_allows_reading_but_not_deleting_or_pruning(
    client: Client, secret: Trace
):
    client.force_login(staff("dave", "view_trace"))
    assert secret.pk in listed(client.get(LIST_URL))
    page = text(client.get(change_url(secret.pk)))
    assert SECRET_PATH in page and "ledger_entries" in page
    assert "Delete" not in re.findall(r'class="deletelink">([^<]*)<', page)
    assert client.get(download_url(secret.pk)).status_code == 200
    assert "Prune old traces" not in text(client.get(LIST_URL))
    assert client.get(f"{LIST_URL}prune/").status_code == 403
    assert client.post(f"{LIST_URL}prune/").status_code == 403
    actions = [value for value, _label in client.get(LIST_URL).context["action_form"].fields[
        "action"
    ].choices]  # fmt: skip
    assert "generate_test" in actions
    assert "delete_selected" not in actions and "prune_traces" not in actions
    assert Trace.objects.filter(pk=secret.pk).exists()


def test_a_superuser_sees_traces(client: Client, secret: Trace, seeded: None):
    client.force_login(User.objects.get(username="alice"))
    response = client.get(LIST_URL)
    assert secret.pk in listed(response)
    assert "Prune old traces" in text(response)
    page = text(client.get(change_url(secret.pk)))
    assert SECRET_PATH in page and "ledger_entries" in page
