"""Timing figures for the trace admin, printed, never asserted.

    .venv/bin/python -m pytest -q -p no:cacheprovider tests/test_admin_timing.py

stores 10,000 small traces (bulk_create) and two traces of 5,000 events, then
prints the median server time of the list and the detail pages through the test
client (targets: list ≤ 200 ms, detail ≤ 1 s). Timing on shared CI machines is
noise, so nothing here fails on a slow run.
"""

from __future__ import annotations

import datetime as dt
import statistics
import time
from typing import Any

import pytest
from django.contrib.admin.utils import quote
from django.test import Client

from kolo_django import admin as trace_admin
from kolo_django import storage, trace
from kolo_django.models import Trace

RUNS = 7
LIST_URL = "/admin/kolo_django/trace/"
METHODS = ["GET", "GET", "GET", "POST", "PUT", "DELETE"]
STATUSES = [200, 200, 200, 302, 404, 500]
VIEWS = ["todo-list", "todo-detail", "todo-create", "stats", "api-todo-list", "dashboard"]


def small_document(n: int, started: dt.datetime) -> dict[str, Any]:
    return {
        "schema_version": trace.SCHEMA_VERSION,
        "id": trace.new_trace_id(int(started.timestamp() * 1000)),
        "started_at": trace.encode_value(started),
        "duration_ms": 5.0 + n % 50,
        "request": {
            "method": METHODS[n % 6],
            "path": f"/todos/{n}/",
            "resolver": {"view_name": VIEWS[n % 6]},
        },
        "response": {"status_code": STATUSES[n % 6]},
        "events": [{"type": "template", "name": "todos/todo_detail.html", "t": 1.0}],
    }


def store_many(count: int) -> None:
    now = dt.datetime.now(dt.timezone.utc)
    rows = []
    for n in range(count):
        document = small_document(n, now - dt.timedelta(seconds=n * 30))
        data = trace.dumps(document)
        rows.append(
            Trace(
                id=document["id"],
                created_at=now - dt.timedelta(seconds=n * 30),
                size=len(data),
                document=data,
                **storage.summary_fields(document),
            )
        )
    Trace.objects.using(storage.alias()).bulk_create(rows, batch_size=1000)


def big_events(count: int, *, only_sql: bool = False) -> list[dict[str, Any]]:
    """A request's worth of calls, distinct SQL statements with rows, ORM rows,
    returns and logs; ``only_sql`` makes every event a distinct statement."""
    events: list[dict[str, Any]] = []
    call_id = 0
    while len(events) < count:
        n = len(events)
        sql = (
            f'SELECT "todos_todo"."id", "todos_todo"."title", "todos_todo"."done", '
            f'"todos_todolist"."name" FROM "todos_todo" INNER JOIN "todos_todolist" ON '
            f'("todos_todo"."todo_list_id" = "todos_todolist"."id") WHERE '
            f'"todos_todo"."id" > {n} ORDER BY "todos_todo"."id" ASC LIMIT 5'
        )
        sql_event = {
            "type": "sql", "t": n * 0.1, "alias": "default", "vendor": "sqlite", "sql": sql,
            "params": [n], "many": False, "statement": "SELECT", "origin": "orm",
            "duration_ms": 0.1, "rowcount": -1, "columns": ["id", "title", "done", "name"],
            "rows": [[i, f"Todo {i}", i % 2 == 0, "Home"] for i in range(5)], "rows_read": 5,
        }  # fmt: skip
        if only_sql:
            events.append(sql_event)
            continue
        call_id += 1
        depth = call_id % 6
        local_values = {f"var{i}": repr(list(range(i * 3))) for i in range(8)}
        events += [
            {"type": "call", "id": call_id, "parent": None, "depth": depth, "t": n * 0.1,
             "function": f"step_{call_id}", "module": "todos.views", "file": "todos/views.py",
             "line": call_id, "locals": local_values},
            sql_event,
            {"type": "orm", "t": n * 0.1, "model": "todos.todo", "alias": "default",
             "source": "query", "fields": ["id", "title", "done", "priority", "owner_id"],
             "rows": [[i, f"Todo {i}", False, 2, 1] for i in range(5)]},
            {"type": "return", "id": call_id, "t": n * 0.1, "value": "None",
             "locals": local_values},
            {"type": "log", "t": n * 0.1, "logger": "todos", "level": "WARNING",
             "message": f"step {call_id} done", "location": "todos/views.py:10"},
        ]  # fmt: skip
    return events[:count]


def median_ms(client: Client, url: str, *, cold_sql: bool = False) -> float:
    times = []
    for _ in range(RUNS):
        if cold_sql:
            trace_admin.SqlFormatter.cache.clear()
        started = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200
    return statistics.median(times)


@pytest.mark.slow
def test_print_admin_timings(admin_client: Client, traces: Any, capsys: Any) -> None:
    store_many(10_000)
    mixed = storage.save_document(
        {**small_document(0, dt.datetime.now(dt.timezone.utc)), "events": big_events(5_000)}
    )
    sql_only = storage.save_document(
        {
            **small_document(1, dt.datetime.now(dt.timezone.utc)),
            "events": big_events(5_000, only_sql=True),
        }
    )
    assert Trace.objects.count() == 10_002
    admin_client.get(LIST_URL)  # warm up templates and the admin's caches
    figures = {
        "list, 10,002 traces": median_ms(admin_client, LIST_URL),
        "list, filtered (GET, 2xx)": median_ms(
            admin_client, f"{LIST_URL}?method=GET&status_class=2xx"
        ),
        "list, path search": median_ms(admin_client, f"{LIST_URL}?q=/todos/42"),
        "list, id search": median_ms(admin_client, f"{LIST_URL}?q={mixed.pk}"),
    }
    detail = f"{LIST_URL}{quote(mixed.pk)}/change/"
    figures["detail, 5,000 mixed events, page 1 (SQL cache cold)"] = median_ms(
        admin_client, detail, cold_sql=True
    )
    figures["detail, same, SQL cache warm"] = median_ms(admin_client, detail)
    figures["detail, same, last page"] = median_ms(admin_client, f"{detail}?page=25", cold_sql=True)
    figures["detail, same, only sql events"] = median_ms(
        admin_client, f"{detail}?type=sql", cold_sql=True
    )
    sql_detail = f"{LIST_URL}{quote(sql_only.pk)}/change/"
    figures["detail, 5,000 distinct SQL statements (cold)"] = median_ms(
        admin_client, sql_detail, cold_sql=True
    )
    with capsys.disabled():
        print(f"\nkolo_django admin timings, median of {RUNS} runs (test client):")
        for name, value in figures.items():
            print(f"  {name:<55} {value:8.1f} ms")
