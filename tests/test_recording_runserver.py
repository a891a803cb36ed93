"""A real ``runserver`` records one trace per request it serves."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.helpers_recording import free_port, serve, server_env, stub_api, throwaway_database
from tests.helpers_recording import manage as run_manage

REPO_ROOT = Path(__file__).resolve().parent.parent
MANAGE = REPO_ROOT / "example_project" / "manage.py"

READ_TRACES = """
import json
from kolo_django.models import Trace
print(json.dumps([
    {"method": t.method, "path": t.path, "status": t.status_code,
     "query_count": t.query_count, "document": t.load_document()}
    for t in Trace.objects.order_by("created_at", "id")
]))
"""


@pytest.fixture
def database(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A database of its own: a SQLite file, or a throwaway PostgreSQL database."""
    with throwaway_database(tmp_path) as config:
        yield config


@pytest.fixture
def project_env(tmp_path: Path, database: dict[str, Any]) -> Iterator[dict[str, str]]:
    """Environment for manage.py: the example settings, with a database of our own."""
    with stub_api() as api_url:
        yield server_env(
            tmp_path,
            f"DATABASES = {{'default': {database!r}}}\n"
            f"EXAMPLE_API_URL = {api_url!r}\n"
            "DEBUG = True\n"
            "KOLO_DJANGO = {'RETENTION_MAX_AGE_DAYS': None}\n"
            "EMAIL_BACKEND = 'django.core.mail.backends.locmem.EmailBackend'\n",
        )


def manage(env: dict[str, str], *args: str) -> str:
    result = run_manage(env, *args)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.fixture
def server(project_env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    manage(project_env, "migrate", "--noinput", "-v", "0")
    manage(project_env, "seed_example", "--todos", "12")
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    command = [sys.executable, str(MANAGE), "runserver", f"127.0.0.1:{port}", "--noreload"]
    # Ready when a path the recorder ignores answers, so waiting leaves no trace.
    with serve(command, project_env, tmp_path / "runserver.log", f"{base_url}/favicon.ico"):
        yield base_url


def test_runserver_records_each_request(server: str, project_env: dict[str, str]) -> None:
    session = requests.Session()
    listing = session.get(f"{server}/api/todos/", timeout=10)
    todo_id = listing.json()[0]["id"]
    sent = [("GET", "/api/todos/", listing.status_code)]

    def hit(method: str, p: str, **kwargs: Any) -> None:
        response = session.request(method, server + p, allow_redirects=False, timeout=10, **kwargs)
        sent.append((method, p, response.status_code))

    hit("GET", f"/todos/{todo_id}/")
    hit("GET", "/stats/")
    hit("POST", "/api/todos/", json={"title": "Over the wire", "todo_list": 1, "done": False})
    hit("PATCH", f"/api/todos/{todo_id}/", json={"done": True})
    hit("GET", "/todos/999999/")
    hit("GET", "/weather/")
    hit("GET", "/dashboard/")
    assert [s for _m, _p, s in sent] == [200, 200, 200, 201, 200, 404, 200, 302]

    # Traces are stored by a writer thread, moments after each response.
    deadline = time.monotonic() + 10
    while True:
        stored = json.loads(manage(project_env, "shell", "-v", "0", "-c", READ_TRACES))
        if len(stored) >= len(sent) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert [(t["method"], t["path"], t["status"]) for t in stored] == sent
    by_path = {(t["method"], t["path"]): t for t in stored}
    created = by_path[("POST", "/api/todos/")]["document"]
    assert created["request"]["body"]["json"]["title"] == "Over the wire"
    assert created["response"]["json"]["title"] == "Over the wire"
    weather = by_path[("GET", "/weather/")]["document"]
    (call,) = [e for e in weather["events"] if e["type"] == "http"]
    assert call["library"] == "requests" and call["status"] == 200
    assert call["response"]["json"]["city"] == "Paris"
    for t in stored:
        sql = [e for e in t["document"]["events"] if e["type"] == "sql"]
        assert t["query_count"] == len(sql)
        assert not [e for e in sql if "kolo_django_trace" in e["sql"]]
    # WSGI runs the view in the request's thread: call capture sees it there.
    stats = by_path[("GET", "/stats/")]["document"]
    calls = [e for e in stats["events"] if e["type"] == "call"]
    assert (calls[0]["function"], calls[0]["module"]) == ("stats", "todos.views")


RECORD_AND_EXIT = """
from django.test import Client
for _ in range(5):
    assert Client().get("/stats/").status_code == 200
"""


def test_traces_queued_at_exit_are_stored(project_env: dict[str, str]) -> None:
    """The process ends right after its requests: the writer's queue is
    flushed at exit, so no trace is lost."""
    manage(project_env, "migrate", "--noinput", "-v", "0")
    manage(project_env, "seed_example", "--todos", "3")
    manage(project_env, "shell", "-v", "0", "-c", RECORD_AND_EXIT)
    stored = json.loads(manage(project_env, "shell", "-v", "0", "-c", READ_TRACES))
    assert [t["path"] for t in stored] == ["/stats/"] * 5
