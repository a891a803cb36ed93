"""Section 5: the Trace admin's server time, when kolo_django.admin registers
Trace: the changelist with 10,000 traces stored, and the change page of a
trace of about 5,000 events."""

from __future__ import annotations

import datetime as dt
import importlib.util
import time
from typing import Any

from .common import LIST_PATH, Table, median, quiet, verdict
from .traces import record, remove_scale_rows, seed_scale_rows


def available() -> bool:
    if importlib.util.find_spec("kolo_django.admin") is None:
        return False
    from django.contrib import admin

    from kolo_django.models import Trace

    return admin.site.is_registered(Trace)


def fill(template: Any, count: int) -> None:
    """``count`` copies of a stored trace, one a second back in time."""
    from kolo_django import trace as trace_module
    from kolo_django.models import Trace

    now = template.created_at
    batch = []
    for i in range(count):
        created = now - dt.timedelta(seconds=i + 1)
        batch.append(
            Trace(
                id=trace_module.new_trace_id(int(created.timestamp() * 1000)),
                created_at=created,
                method=template.method,
                path=template.path if i % 3 else f"{template.path}?page={i % 7}",
                status_code=template.status_code if i % 11 else 404,
                view_name=template.view_name,
                duration_ms=template.duration_ms,
                query_count=template.query_count,
                event_count=template.event_count,
                size=template.size,
                schema_version=template.schema_version,
                document=template.document,
            )
        )
        if len(batch) == 1000:
            Trace.objects.bulk_create(batch)
            batch = []
    if batch:
        Trace.objects.bulk_create(batch)


def timed_get(client: Any, url: str, repeats: int) -> tuple[list[float], int, int]:
    with quiet():
        response = client.get(url)  # warm-up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        response = client.get(url)
        times.append(time.perf_counter() - started)
    return times, response.status_code, len(response.content)


def run(*, traces: int, detail_events: int, repeats: int) -> dict[str, Any]:
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.urls import reverse

    from kolo_django.models import Trace

    template = record(LIST_PATH, "full")
    start = seed_scale_rows(detail_events // 2)
    try:
        big = record(
            f"/bench/queries/?n={detail_events // 2}&start={start}",
            "gen",
            MAX_EVENTS=detail_events + 100,
        )
    finally:
        remove_scale_rows()
    existing = Trace.objects.count()
    fill(template, max(0, traces - existing))
    client = Client()
    client.force_login(get_user_model().objects.get(username="alice"))
    results: dict[str, Any] = {"traces": Trace.objects.count()}
    times, status, size = timed_get(client, reverse("admin:kolo_django_trace_changelist"), repeats)
    results["changelist"] = {
        "seconds": times,
        "median_ms": median(times) * 1000,
        "status": status,
        "bytes": size,
    }
    times, status, size = timed_get(
        client, reverse("admin:kolo_django_trace_change", args=[big.pk]), repeats
    )
    results["detail"] = {
        "events": big.event_count,
        "seconds": times,
        "median_ms": median(times) * 1000,
        "status": status,
        "bytes": size,
    }
    return results


def table(results: dict[str, Any]) -> Table:
    t = Table(
        "5. Admin server time (test Client, logged-in superuser; median)",
        ["page", "status", "response bytes", "median ms", "target"],
    )
    changelist = results["changelist"]
    t.add(
        f"changelist, {results['traces']:,} traces",
        changelist["status"],
        f"{changelist['bytes']:,}",
        f"{changelist['median_ms']:.1f}",
        f"≤ 200 ms: {verdict(changelist['status'] == 200 and changelist['median_ms'] <= 200)}",
    )
    detail = results["detail"]
    t.add(
        f"change page, {detail['events']:,}-event trace",
        detail["status"],
        f"{detail['bytes']:,}",
        f"{detail['median_ms']:.1f}",
        "",
    )
    return t
