"""Concurrency under real servers: every trace holds only its own request's
events, and none is lost.

- WSGI: ``runserver`` (a threaded WSGI server), 8 client threads x 200
  requests, each with its own path and query marker.
- ASGI: uvicorn serving the example project's ASGI application, concurrent
  async and sync views.

Each request carries a unique marker (``m<thread>x<index>y``) in its query
string; the view puts it in SQL parameters, a log message, a call's locals and
the response. A trace with any other marker in it is cross-talk.
Figures are printed as ``[figures] ...`` lines (run with ``-s``).
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import re
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.helpers_recording import (
    MANAGE,
    free_port,
    manage,
    serve,
    server_env,
    stored_documents,
    throwaway_database,
)

THREADS = 8
PER_THREAD = 200
MARKER_RE = re.compile(r"m\d+x\d+y")

VIEWS = """
import asyncio
import logging

from django.http import JsonResponse
from django.urls import path

from todos.models import Todo, TodoList

logger = logging.getLogger("concurrency")


def summarise(marker, count):
    return {"marker": marker, "count": count}


def echo(request, n):
    marker = request.GET["q"]
    count = Todo.objects.filter(title__contains=marker).count()
    first = TodoList.objects.filter(name=marker).first()
    logger.warning("echo %s", marker)
    return JsonResponse({**summarise(marker, count), "n": n, "first": first is not None})


async def aecho(request, n):
    marker = request.GET["q"]
    count = await Todo.objects.filter(title__contains=marker).acount()
    # Let the other requests' coroutines run between this one's queries.
    await asyncio.sleep(0.002)
    first = await TodoList.objects.filter(name=marker).afirst()
    logger.warning("aecho %s", marker)
    return JsonResponse({**summarise(marker, count), "n": n, "first": first is not None})


urlpatterns = [path("echo/<int:n>/", echo), path("aecho/<int:n>/", aecho)]
"""

SETTINGS = """
DATABASES = {{"default": {database!r}}}
DEBUG = True
ROOT_URLCONF = "concurrency_urls"
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
KOLO_DJANGO = {{
    "RETENTION_MAX_AGE_DAYS": None,
    "RETENTION_MAX_TRACES": None,
    "CALLS_INCLUDE": ["concurrency_urls"],
}}
"""


@pytest.fixture
def env(tmp_path: Path) -> Iterator[dict[str, str]]:
    with throwaway_database(tmp_path) as database:
        env = server_env(tmp_path, SETTINGS.format(database=database), concurrency_urls=VIEWS)
        migrated = manage(env, "migrate", "--noinput", "-v", "0")
        assert migrated.returncode == 0, migrated.stderr[-3000:]
        yield env


def _marker(thread: int, index: int) -> str:
    return f"m{thread}x{index}y"


def _drive(base_url: str, plan: list[list[tuple[str, int, str]]]) -> tuple[list[str], float]:
    """Each inner list is one client thread's requests (view, n, marker), made
    in order on its own connection; returns the failures and the time taken."""

    def client(requests_of_thread: list[tuple[str, int, str]]) -> list[str]:
        failures = []
        with requests.Session() as session:
            for view, n, marker in requests_of_thread:
                response = session.get(f"{base_url}/{view}/{n}/", params={"q": marker}, timeout=30)
                body = response.json() if response.status_code == 200 else None
                if body is None or (body["marker"], body["n"]) != (marker, n):
                    failures.append(f"{view}/{n}: {response.status_code} {response.text[:200]}")
        return failures

    started = time.perf_counter()
    with ThreadPoolExecutor(len(plan)) as pool:
        failures = [f for result in pool.map(client, plan) for f in result]
    return failures, time.perf_counter() - started


def _check(documents: list[dict[str, Any]], sent: dict[str, tuple[str, int]]) -> dict[str, int]:
    """Figures: lost traces, cross-talk, and traces whose own events are missing."""
    seen: dict[str, int] = {}
    cross_talk = incomplete = 0
    for document in documents:
        request = document["request"]
        marker = request["query"]["q"][0]
        seen[marker] = seen.get(marker, 0) + 1
        view, n = sent[marker]
        text = json.dumps(document)
        own = (
            request["path"] == f"/{view}/{n}/"
            and request["query_string"] == f"q={marker}"
            and document["response"]["json"]
            == {"marker": marker, "count": 0, "n": n, "first": False}
        )
        # Any marker or path of another request anywhere in the document.
        if set(MARKER_RE.findall(text)) != {marker} or set(re.findall(r"/a?echo/(\d+)/", text)) != {
            str(n)
        }:
            cross_talk += 1
            continue
        sql = [e for e in document["events"] if e["type"] == "sql"]
        logs = [
            e for e in document["events"] if e["type"] == "log" and e["logger"] == "concurrency"
        ]
        calls = [
            e for e in document["events"] if e["type"] == "call" and e["function"] == "summarise"
        ]
        returns = [
            e
            for e in document["events"]
            if e["type"] == "return" and calls and e["id"] == calls[0]["id"]
        ]
        complete = (
            own
            and [e["params"] for e in sql] == [[f"%{marker}%"], [marker]]
            and [e["message"] for e in logs] == [f"{view} {marker}"]
            and len(calls) == 1
            and len(returns) == 1
            and returns[0]["locals"]["marker"] == repr(marker)
            and document["faults"] == []
        )
        incomplete += not complete
    lost = sum(1 for marker in sent if marker not in seen)
    duplicated = sum(count - 1 for count in seen.values())
    return {
        "requests": len(sent),
        "traces": len(documents),
        "lost": lost,
        "duplicated": duplicated,
        "cross-talk": cross_talk,
        "incomplete": incomplete,
    }


def test_threaded_wsgi_server(env: dict[str, str], tmp_path: Path) -> None:
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    plan = [
        [("echo", thread * 1000 + i, _marker(thread, i)) for i in range(PER_THREAD)]
        for thread in range(THREADS)
    ]
    sent = {marker: (view, n) for requests_of in plan for view, n, marker in requests_of}
    command = [sys.executable, str(MANAGE), "runserver", f"127.0.0.1:{port}", "--noreload"]
    with serve(command, env, tmp_path / "runserver.log", f"{base_url}/favicon.ico"):
        failures, seconds = _drive(base_url, plan)
    assert failures == []
    figures = _check(stored_documents(env), sent)
    print(
        f"[figures] WSGI runserver, {THREADS} threads x {PER_THREAD} requests in {seconds:.1f} s: "
        + ", ".join(f"{k}={v}" for k, v in figures.items())
    )
    assert figures == {
        "requests": THREADS * PER_THREAD,
        "traces": THREADS * PER_THREAD,
        "lost": 0,
        "duplicated": 0,
        "cross-talk": 0,
        "incomplete": 0,
    }


ASGI_PER_THREAD = 100


@pytest.mark.skipif(importlib.util.find_spec("uvicorn") is None, reason="uvicorn is not installed")
def test_asgi_server(env: dict[str, str], tmp_path: Path) -> None:
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    # Async and sync views interleaved, all threads at once.
    plan = [
        [
            ("aecho" if i % 4 else "echo", thread * 1000 + i, _marker(thread, i))
            for i in range(ASGI_PER_THREAD)
        ]
        for thread in range(THREADS)
    ]
    sent = {marker: (view, n) for requests_of in plan for view, n, marker in requests_of}
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "example.asgi:application",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--lifespan",
        "off",
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    with serve(command, env, tmp_path / "uvicorn.log", f"{base_url}/favicon.ico"):
        failures, seconds = _drive(base_url, plan)
    assert failures == []
    documents = stored_documents(env)
    figures = _check(documents, sent)
    print(
        f"[figures] ASGI uvicorn, {THREADS} threads x {ASGI_PER_THREAD} requests "
        f"(3/4 async views) in {seconds:.1f} s: "
        + ", ".join(f"{k}={v}" for k, v in figures.items())
    )
    assert figures == {
        "requests": THREADS * ASGI_PER_THREAD,
        "traces": THREADS * ASGI_PER_THREAD,
        "lost": 0,
        "duplicated": 0,
        "cross-talk": 0,
        "incomplete": 0,
    }
    # The requests really overlapped: many started before the previous one ended.
    spans = sorted(
        (dt.datetime.fromisoformat(d["started_at"]["v"]).timestamp(), d["duration_ms"] / 1000)
        for d in documents
    )
    overlapping = sum(
        1
        for (start, length), (next_start, _) in zip(spans, spans[1:], strict=False)
        if next_start < start + length
    )
    print(
        f"[figures] ASGI: {overlapping} of {len(spans)} requests started before the previous ended"
    )
    assert overlapping > len(spans) // 4
