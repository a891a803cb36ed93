"""Sections 3 and 4: what one trace costs to store, and to turn into a test."""

from __future__ import annotations

import json
import time
from typing import Any

from .common import HEAVY_PATH, VIEW_LABELS, VIEWS, Table, median, quiet, verdict
from .configs import kolo_settings, middleware_for


def record(path: str, config: str, **extra: Any) -> Any:
    """Request ``path`` once under ``config``; the stored Trace."""
    from django.conf import settings
    from django.test import Client, override_settings

    from kolo_django import storage
    from kolo_django.models import Trace

    with override_settings(
        MIDDLEWARE=middleware_for(config, settings.BASE_MIDDLEWARE),
        KOLO_DJANGO=kolo_settings(config, RETENTION_MAX_TRACES=None, **extra),
    ):
        client = Client()
        with quiet():
            client.get(path)  # warm caches (URL resolution, code decisions)
            storage.flush(timeout=60)
            latest_before = Trace.objects.order_by("-created_at", "-id").first()
            response = client.get(path)
        storage.flush(timeout=60)
        if response.status_code != 200:
            raise RuntimeError(f"{path} answered {response.status_code}")
    latest = Trace.objects.order_by("-created_at", "-id").first()
    if latest is None or latest == latest_before:
        raise RuntimeError(f"no trace stored for {path} under {config}")
    return latest


def describe(trace: Any) -> dict[str, Any]:
    document = trace.load_document()
    text = json.dumps(document, separators=(",", ":"), ensure_ascii=False, default=str)
    kinds: dict[str, int] = {}
    for event in document["events"]:
        kinds[event["type"]] = kinds.get(event["type"], 0) + 1
    return {
        "id": trace.id,
        "stored_bytes": trace.size,
        "json_bytes": len(text.encode("utf-8")),
        "events": trace.event_count,
        "queries": trace.query_count,
        "calls": kinds.get("call", 0),
        "event_kinds": kinds,
    }


# --- Section 3 ---------------------------------------------------------------------------


def run_sizes(views: list[str]) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for view in views:
        for config in ("gen", "full"):
            results[f"{view}/{config}"] = describe(record(VIEWS[view], config))
    return results


def sizes_table(results: dict[str, Any]) -> Table:
    t = Table(
        "3. Stored bytes per trace (Trace.size: compressed JSON; and the JSON itself)",
        ["view", "capture", "stored bytes", "JSON bytes", "events", "queries", "calls", "target"],
    )
    for key, figures in results.items():
        view, config = key.split("/")
        target = ""
        if view == "list":
            target = f"≤ 6 KB: {verdict(figures['stored_bytes'] <= 6 * 1024)}"
        t.add(
            VIEW_LABELS[view],
            config,
            f"{figures['stored_bytes']:,}",
            f"{figures['json_bytes']:,}",
            figures["events"],
            figures["queries"],
            figures["calls"],
            target,
        )
    return t


# --- Section 4 ---------------------------------------------------------------------------


def time_generation(document: dict[str, Any], repeats: int) -> tuple[list[float], str]:
    from kolo_django.generation.api import generate

    times = []
    source = ""
    for _ in range(repeats):
        started = time.perf_counter()
        source, _context = generate([document], style="unittest")
        times.append(time.perf_counter() - started)
    return times, source


def seed_scale_rows(count: int) -> int:
    """``count`` extra todos with consecutive pks; the first pk."""
    from todos.models import Todo, TodoList

    todo_list = TodoList.objects.create(name="Benchmark scale", color="#000000")
    last = Todo.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    start = last + 1
    Todo.objects.bulk_create(
        [
            Todo(pk=start + i, title=f"Scale todo {i}", notes="", todo_list=todo_list)
            for i in range(count)
        ],
        batch_size=500,
    )
    return start


def remove_scale_rows() -> None:
    from todos.models import TodoList

    TodoList.objects.filter(name="Benchmark scale").delete()


def run_generation(sizes: list[int], repeats: int) -> dict[str, Any]:
    heavy = record(HEAVY_PATH, "full")
    heavy_document = heavy.load_document()
    times, source = time_generation(heavy_document, repeats + 1)
    results: dict[str, Any] = {
        "heavy": {
            **describe(heavy),
            "first_seconds": times[0],
            "seconds": times[1:],
            "median_seconds": median(times[1:]),
            "source_lines": source.count("\n"),
        },
        "scaling": [],
    }
    start = seed_scale_rows(max(sizes))
    try:
        for n in sizes:
            trace = record(
                f"/bench/queries/?n={n}&start={start}", "gen", MAX_EVENTS=max(10_000, 2 * n + 100)
            )
            document = trace.load_document()
            runs = repeats if n <= 1000 else max(1, min(repeats, 2))
            times, source = time_generation(document, runs)
            results["scaling"].append(
                {
                    "queries": trace.query_count,
                    "events": trace.event_count,
                    "stored_bytes": trace.size,
                    "seconds": times,
                    "median_seconds": median(times),
                    "us_per_query": median(times) / max(trace.query_count, 1) * 1e6,
                    "source_lines": source.count("\n"),
                }
            )
            print(f"  section 4: {n} queries generated", flush=True)
    finally:
        remove_scale_rows()
    return results


def generation_tables(results: dict[str, Any]) -> list[Table]:
    heavy = results["heavy"]
    first = Table(
        "4a. Generation (unittest style) of the heavy view's full-capture trace, after Django setup",
        [
            "trace",
            "events",
            "calls",
            "queries",
            "first call s",
            "median s (next runs)",
            "lines",
            "target",
        ],
    )
    first.add(
        "heavy /bench/heavy/",
        heavy["events"],
        heavy["calls"],
        heavy["queries"],
        f"{heavy['first_seconds']:.3f}",
        f"{heavy['median_seconds']:.3f}",
        heavy["source_lines"],
        f"≤ 0.5 s: {verdict(max(heavy['first_seconds'], heavy['median_seconds']) <= 0.5)}",
    )
    growth = Table(
        "4b. Generation time by query count (/bench/queries/?n=N: N pk lookups of distinct rows)",
        ["queries", "events", "stored bytes", "median s", "µs/query", "test lines", "target"],
    )
    for row in results["scaling"]:
        target = ""
        if row["queries"] >= 5000:
            target = f"≤ 5 s: {verdict(row['median_seconds'] <= 5)}"
        growth.add(
            row["queries"],
            row["events"],
            f"{row['stored_bytes']:,}",
            f"{row['median_seconds']:.3f}",
            f"{row['us_per_query']:.0f}",
            row["source_lines"],
            target,
        )
    return [first, growth]


def linearity(results: dict[str, Any]) -> float | None:
    """µs/query at the largest size over the median µs/query of the sizes from
    500 up to it: 1.0 is linear, above it grows faster than the query count.
    (Small sizes are left out: their fixed cost spreads over few queries.)"""
    rows = results["scaling"]
    if len(rows) < 2:
        return None
    largest = rows[-1]
    reference = [r["us_per_query"] for r in rows[:-1] if r["queries"] >= 500] or [
        rows[-2]["us_per_query"]
    ]
    return largest["us_per_query"] / median(reference)
