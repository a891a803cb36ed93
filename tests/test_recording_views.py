"""Every example view, driven through the test client, yields one faithful trace."""

from __future__ import annotations

import base64
import json
import logging
from typing import Any
from urllib.parse import urlencode

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import HttpRequest, HttpResponse
from django.test import Client, override_settings
from django.urls import include, path

from tests.helpers_recording import baseline_query_count, events, only_trace, stub_api


def _boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("boom from the view")


def _warn(request: HttpRequest) -> HttpResponse:
    logging.getLogger("todos.throwaway").warning("disk almost full: %s%%", 93)
    logging.getLogger("todos.throwaway").info("not at the recorded level")
    return HttpResponse("ok")


urlpatterns = [
    path("boom/", _boom),
    path("warn/", _warn),
    path("", include("example.urls")),
]
THIS_URLCONF = __name__


@pytest.fixture
def todo(seeded: None) -> Any:
    from todos.models import Todo

    return Todo.objects.exclude(tags=None).order_by("pk").first()


def recorded(
    client: Client, traces: Any, method: str, path: str, status: int, **kwargs: Any
) -> tuple[Any, Any, dict[str, Any]]:
    """Make the request once unrecorded (to count Django's own queries), then
    recorded; check the one trace's summary against the response."""
    expected_queries = baseline_query_count(client, method, path, **kwargs)
    response = getattr(client, method.lower())(path, **kwargs)
    assert response.status_code == status, response.content[:500]
    obj, document = only_trace(traces)
    assert (obj.method, obj.path, obj.status_code) == (method, path.split("?")[0], status)
    request = document["request"]
    assert (request["method"], request["path"]) == (method, path.split("?")[0])
    assert document["response"]["status_code"] == status
    sql = events(document, "sql")
    assert obj.query_count == len(sql) == expected_queries, [e["sql"] for e in sql]
    return response, obj, document


def test_list(client: Client, traces: Any, seeded: None) -> None:
    _response, obj, document = recorded(client, traces, "GET", "/todos/?page=2", 200)
    assert document["request"]["query"] == {"page": ["2"]}
    assert document["request"]["resolver"]["view"] == "todos.views.todo_list"
    assert obj.view_name == "todo-list"
    # Each template once, the view's own first, also while the test runner
    # has its instrumented renderer installed.
    assert document["response"]["templates"] == ["todos/todo_list.html", "base.html"]
    assert [e["name"] for e in events(document, "template")] == [
        "todos/todo_list.html",
        "base.html",
    ]


def test_detail(client: Client, traces: Any, todo: Any) -> None:
    _response, _obj, document = recorded(client, traces, "GET", f"/todos/{todo.pk}/", 200)
    assert document["request"]["resolver"]["kwargs"] == {"pk": todo.pk}
    (row_event,) = events(document, "orm", model="todos.todo", source="query")
    assert row_event["rows"][0][row_event["fields"].index("id")] == todo.pk
    assert todo.title in document["response"]["content"]


def test_not_found(client: Client, traces: Any, seeded: None) -> None:
    _response, _obj, document = recorded(client, traces, "GET", "/todos/999999/", 404)
    assert document["request"]["resolver"]["kwargs"] == {"pk": 999999}
    (sql,) = events(document, "sql")
    assert sql["rows_read"] == 0 and sql["params"][0] == 999999
    # Http404 is handled inside the stack; it is not an uncaught exception.
    assert document["exception"] is None


def test_debug_technical_page_is_not_the_response_context(
    client: Client, traces: Any, seeded: None
) -> None:
    """Under DEBUG a 404 is Django's technical page, which a test (DEBUG off) never
    renders: its context must not become something to assert on."""
    with override_settings(DEBUG=True):
        assert client.get("/todos/999999/").status_code == 404
    _obj, document = only_trace(traces)
    assert not document["response"].get("context")
    assert not document["response"].get("templates")


def test_form_post_create(client: Client, traces: Any, seeded: None) -> None:
    from todos.models import Tag, Todo, TodoList

    todo_list = TodoList.objects.get(name="Work")
    form = {
        "title": "Recorded todo",
        "notes": "",
        "priority": "3",
        "estimate_hours": "1.5",
        "due_date": "",
        "todo_list": str(todo_list.pk),
        "tags": [str(t.pk) for t in Tag.objects.filter(slug__in=["urgent", "ideas"])],
    }
    # What a browser sends: urlencoded, the multi-valued field repeated.
    response, _obj, document = recorded(
        client,
        traces,
        "POST",
        "/todos/new/",
        302,
        data=urlencode(form, doseq=True),
        content_type="application/x-www-form-urlencoded",
    )
    created = Todo.objects.get(title="Recorded todo")
    assert response["Location"] == f"/todos/{created.pk}/"
    body = document["request"]["body"]
    assert body["kind"] == "form"
    assert body["form"]["tags"] == form["tags"]
    assert body["form"]["title"] == ["Recorded todo"]
    assert document["response"]["redirect"] == f"/todos/{created.pk}/"
    inserts = [e for e in events(document, "sql", statement="INSERT") if "todos_todo" in e["sql"]]
    assert inserts and "Recorded todo" in inserts[0]["params"]


def test_json_get(client: Client, traces: Any, todo: Any) -> None:
    _response, _obj, document = recorded(client, traces, "GET", f"/api/todos/{todo.pk}/", 200)
    assert document["response"]["json"]["id"] == todo.pk
    assert document["response"]["json"]["tags"]
    assert events(document, "orm", model="todos.tag")


def test_json_post(client: Client, traces: Any, seeded: None) -> None:
    from todos.models import TodoList

    payload = {"title": "From JSON", "todo_list": TodoList.objects.first().pk, "tags": ["urgent"]}
    _response, _obj, document = recorded(
        client,
        traces,
        "POST",
        "/api/todos/",
        201,
        data=payload,
        content_type="application/json",
    )
    assert document["request"]["content_type"] == "application/json"
    assert document["request"]["body"] == {
        "kind": "json",
        "json": payload,
        "size": len(json.dumps(payload)),
    }
    assert document["response"]["json"]["title"] == "From JSON"


def test_json_put(client: Client, traces: Any, todo: Any) -> None:
    payload = {"title": "Replaced", "done": True, "priority": 1}
    _response, _obj, document = recorded(
        client,
        traces,
        "PUT",
        f"/api/todos/{todo.pk}/",
        200,
        data=payload,
        content_type="application/json",
    )
    assert document["request"]["body"]["json"] == payload
    assert document["response"]["json"]["done"] is True
    assert events(document, "sql", statement="UPDATE")


def test_json_patch(client: Client, traces: Any, todo: Any) -> None:
    from todos.models import Tag

    _response, _obj, document = recorded(
        client,
        traces,
        "PATCH",
        f"/api/todos/{todo.pk}/",
        200,
        data={"tags": ["waiting"]},
        content_type="application/json",
    )
    assert document["request"]["body"]["json"] == {"tags": ["waiting"]}
    assert document["response"]["json"]["tags"] == ["waiting"]
    assert list(todo.tags.all()) == [Tag.objects.get(slug="waiting")]


def test_json_patch_invalid(client: Client, traces: Any, todo: Any) -> None:
    _response, _obj, document = recorded(
        client,
        traces,
        "PATCH",
        f"/api/todos/{todo.pk}/",
        400,
        data={"priority": 9},
        content_type="application/json",
    )
    assert "priority" in document["response"]["json"]["errors"]


def test_json_delete(client: Client, traces: Any, todo: Any) -> None:
    from todos.models import Todo

    recorded(client, traces, "DELETE", f"/api/todos/{todo.pk}/", 204)
    assert not Todo.objects.filter(pk=todo.pk).exists()


def test_multipart_upload(client: Client, traces: Any, todo: Any, tmp_path: Any) -> None:
    content = b"hello\x00\xffbinary"
    with override_settings(MEDIA_ROOT=str(tmp_path)):
        upload = SimpleUploadedFile("notes.bin", content, content_type="application/x-thing")
        expected = baseline_query_count(
            client, "POST", f"/todos/{todo.pk}/attach/", data={"file": upload, "note": "n"}
        )
        upload = SimpleUploadedFile("notes.bin", content, content_type="application/x-thing")
        response = client.post(f"/todos/{todo.pk}/attach/", {"file": upload, "note": "n"})
    assert response.status_code == 302
    obj, document = only_trace(traces)
    assert obj.query_count == expected
    body = document["request"]["body"]
    assert body["kind"] == "multipart"
    assert body["form"] == {"note": ["n"]}
    (file_info,) = body["files"]
    assert file_info["field"] == "file"
    assert file_info["name"] == "notes.bin"
    assert file_info["size"] == len(content)
    assert file_info["content_type"] == "application/x-thing"
    assert base64.b64decode(file_info["base64"]) == content
    assert file_info["truncated"] is False


def test_login_required_logged_in(client: Client, traces: Any, seeded: None) -> None:
    alice = get_user_model().objects.get(username="alice")
    client.force_login(alice)
    _response, _obj, document = recorded(client, traces, "GET", "/dashboard/", 200)
    user = document["request"]["user"]
    assert user["authenticated"] is True
    assert (user["username"], user["pk"], user["model"]) == ("alice", alice.pk, "auth.user")


def test_login_required_anonymous(client: Client, traces: Any, seeded: None) -> None:
    _response, _obj, document = recorded(client, traces, "GET", "/dashboard/", 302)
    assert document["request"]["user"] == {"authenticated": False}
    assert document["response"]["redirect"] == "/accounts/login/?next=/dashboard/"


def test_basic_auth(client: Client, traces: Any, seeded: None) -> None:
    credentials = base64.b64encode(b"bob:bob-password").decode()
    _response, obj, document = recorded(
        client, traces, "GET", "/api/whoami/", 200, HTTP_AUTHORIZATION=f"Basic {credentials}"
    )
    assert document["request"]["auth"] == {"scheme": "basic", "username": "bob"}
    assert document["response"]["json"]["username"] == "bob"
    text = json.dumps(document)
    assert "bob-password" not in text
    assert credentials not in text


def test_session_before_the_view(client: Client, traces: Any, seeded: None) -> None:
    from todos.models import TodoList

    work = TodoList.objects.get(name="Work")
    assert client.post("/session/favourite/", {"list_id": work.pk}).status_code == 302
    assert client.get("/session/").status_code == 200
    traces.all().delete()
    _response, _obj, document = recorded(client, traces, "GET", "/session/", 200)
    # The session as the view found it, before it counted this visit.
    assert document["request"]["session"] == {"favourite_list": work.pk, "visits": 1}
    assert events(document, "orm", model="todos.todolist")


def test_stats_backing_rows(client: Client, traces: Any, seeded: None) -> None:
    from todos.models import Todo

    _response, _obj, document = recorded(client, traces, "GET", "/stats/", 200)
    assert not events(document, "orm", source="query"), "stats must not build model instances"
    backing = events(document, "orm", model="todos.todo", source="backing")
    assert backing
    ids = {row[e["fields"].index("id")] for e in backing for row in e["rows"]}
    # The unfiltered SUM and values_list() read every todo, so every row is kept.
    assert ids == set(Todo.objects.values_list("pk", flat=True))


def test_raw_sql_report(client: Client, traces: Any, seeded: None) -> None:
    _response, _obj, document = recorded(client, traces, "GET", "/report/", 200)
    (raw,) = events(document, "sql", origin="raw", statement="SELECT")
    assert len(raw["columns"]) == 2
    assert [row[0] for row in raw["rows"]] == ["Errands", "Home", "Work"]
    assert [row[1] for row in raw["rows"]] == [20, 20, 20]
    assert raw["rows_read"] == 3
    assert len(events(document, "orm", model="todos.todolist", source="backing")[0]["rows"]) == 3
    assert len(events(document, "orm", model="todos.todo", source="backing")[0]["rows"]) == 60


def test_weather_through_requests(client: Client, traces: Any, db: None) -> None:
    with stub_api() as base_url, override_settings(EXAMPLE_API_URL=base_url):
        _response, _obj, document = recorded(client, traces, "GET", "/weather/", 200)
    (call,) = events(document, "http")
    assert call["library"] == "requests"
    assert call["method"] == "GET"
    assert call["url"] == f"{base_url}/weather?city=Paris"
    assert call["status"] == 200
    assert call["response"]["json"] == {"city": "Paris", "temperature_c": 18.5}


def test_quote_through_httpx(client: Client, traces: Any, db: None) -> None:
    with stub_api() as base_url, override_settings(EXAMPLE_API_URL=base_url):
        _response, _obj, document = recorded(client, traces, "GET", "/quote/", 200)
    get, post = events(document, "http")
    assert (get["library"], get["method"], get["url"]) == ("httpx", "GET", f"{base_url}/quote")
    assert get["status"] == 200
    assert get["response"]["json"]["author"] == "Alan Kay"
    assert (post["library"], post["method"], post["url"]) == ("httpx", "POST", f"{base_url}/echo")
    assert post["request"]["json"] == {"event": "quote-shown", "author": "Alan Kay"}
    assert post["response"]["json"] == post["request"]["json"]


def test_outbound_failure_is_recorded(client: Client, traces: Any, db: None) -> None:
    from tests.helpers_recording import free_port

    with override_settings(EXAMPLE_API_URL=f"http://127.0.0.1:{free_port()}"):
        _response, _obj, document = recorded(client, traces, "GET", "/weather/", 502)
    (call,) = events(document, "http")
    assert "ConnectionError" in call["error"]
    assert "status" not in call


def test_share_sends_mail(client: Client, traces: Any, todo: Any) -> None:
    _response, _obj, document = recorded(
        client, traces, "POST", f"/todos/{todo.pk}/share/", 302, data={"email": "x@example.com"}
    )
    plain, with_attachment = events(document, "mail")
    assert plain["subject"] == with_attachment["subject"] == f"Todo: {todo.title}"
    assert plain["to"] == with_attachment["to"] == ["x@example.com"]
    assert plain["attachments"] == []
    assert with_attachment["attachments"] == ["todo.txt"]
    assert len(mail.outbox) == 2


def test_forbidden(client: Client, traces: Any, seeded: None) -> None:
    from todos.models import Todo

    others = Todo.objects.exclude(owner__username="bob").exclude(owner=None).first()
    client.force_login(get_user_model().objects.get(username="bob"))
    _response, _obj, document = recorded(client, traces, "GET", f"/todos/{others.pk}/secret/", 403)
    assert document["request"]["user"]["username"] == "bob"
    (log,) = events(document, "log", logger="django.request")
    assert log["message"].startswith("Forbidden (Permission denied)")


@override_settings(ROOT_URLCONF=THIS_URLCONF)
def test_server_error_keeps_the_exception(traces: Any, db: None) -> None:
    client = Client(raise_request_exception=False)
    _response, _obj, document = recorded(client, traces, "GET", "/boom/", 500)
    exception = document["exception"]
    assert exception["type"] == "builtins.RuntimeError"
    assert exception["message"] == "boom from the view"
    assert "in _boom" in exception["traceback"]
    assert 'raise RuntimeError("boom from the view")' in exception["traceback"]
    (event,) = events(document, "exception")
    assert event["exception_type"] == "builtins.RuntimeError"
    assert event["traceback"] == exception["traceback"]
    (log,) = events(document, "log", logger="django.request")
    assert log["level"] == "ERROR"
    assert log["exception"] == "RuntimeError: boom from the view"


@override_settings(ROOT_URLCONF=THIS_URLCONF)
def test_warning_logs_are_recorded(client: Client, traces: Any, db: None) -> None:
    _response, _obj, document = recorded(client, traces, "GET", "/warn/", 200)
    (log,) = events(document, "log")
    assert log == {
        "type": "log",
        "logger": "todos.throwaway",
        "level": "WARNING",
        "message": "disk almost full: 93%",
        "location": log["location"],
        "t": log["t"],
    }
    assert log["location"].endswith(
        f"{__file__.rsplit('/', 1)[-1]}:{_warn.__code__.co_firstlineno + 1}"
    )


@override_settings(
    ROOT_URLCONF=THIS_URLCONF,
    KOLO_DJANGO={"ENABLED": True, "RECORD_DURING_TESTS": True, "LOG_LEVEL": "INFO"},
)
def test_log_level_setting(client: Client, traces: Any, db: None, caplog: Any) -> None:
    # The logger must let INFO through at all; LOG_LEVEL only filters what reaches us.
    caplog.set_level(logging.INFO, logger="todos.throwaway")
    _response, _obj, document = recorded(client, traces, "GET", "/warn/", 200)
    assert [e["level"] for e in events(document, "log")] == ["WARNING", "INFO"]


def test_each_request_its_own_trace(client: Client, traces: Any, todo: Any) -> None:
    paths = ["/todos/", f"/todos/{todo.pk}/", "/stats/", "/todos/999999/", "/report/"]
    for p in paths:
        client.get(p)
    stored = list(traces.order_by("created_at", "id"))
    assert [(t.method, t.path) for t in stored] == [("GET", p) for p in paths]
    assert [t.status_code for t in stored] == [200, 200, 200, 404, 200]
    assert len({t.id for t in stored}) == len(paths)
