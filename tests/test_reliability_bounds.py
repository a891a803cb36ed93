"""Bounds: what a trace keeps is capped, with a marker where something was cut,
and the recorder's memory does not grow with the size of the request.

Memory is the ``tracemalloc`` peak of the same request made with recording
off and on; the difference must stay under a small constant however large the
upload, query or loop. Figures are printed as ``[figures] ...`` lines.
"""

from __future__ import annotations

import datetime as dt
import gc
import io
import json
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.test import Client, override_settings
from django.urls import include, path
from django.utils import timezone

from kolo_django import storage, trace
from tests.helpers_recording import RECORDING_OFF, documents, events, recording_settings

MB = 1024 * 1024
# What recording may add to a request's peak memory, whatever its size.
RECORDER_BUDGET = 10 * MB
ROWS = 100_000
UPLOAD_BYTES = 50 * MB

CTE = (
    "WITH RECURSIVE numbers(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM numbers "
    f"WHERE n < {ROWS}) SELECT n, 'row number ' || n FROM numbers"
)
# MySQL and MariaDB: || is OR, and recursion stops at 1,000 unless raised.
CTE_MYSQL = (
    "WITH RECURSIVE numbers(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM numbers "
    f"WHERE n < {ROWS}) SELECT n, CONCAT('row number ', n) FROM numbers"
)


def upload_size(request: HttpRequest) -> JsonResponse:
    upload = request.FILES["file"]
    return JsonResponse({"size": upload.size, "note": request.POST.get("note")})


def ignore_body(request: HttpRequest) -> HttpResponse:
    return HttpResponse("not read")


def raw_rows(request: HttpRequest) -> JsonResponse:
    total = 0
    with connection.cursor() as cursor:
        if connection.vendor == "mysql":
            cursor.execute(f"SET SESSION max_recursive_iterations = {ROWS + 1}")
            cursor.execute(CTE_MYSQL)
        else:
            cursor.execute(CTE)
        if request.GET.get("how") == "fetchall":
            total = sum(row[0] for row in cursor.fetchall())
        else:
            for row in cursor:
                total += row[0]
    return JsonResponse({"total": total})


def orm_rows(request: HttpRequest) -> JsonResponse:
    from todos.models import Tag

    count = 0
    for tag in Tag.objects.iterator(chunk_size=2000):
        count += len(tag.slug) > 0
    return JsonResponse({"count": count})


def big_json_body(request: HttpRequest) -> JsonResponse:
    data = json.loads(request.body)
    return JsonResponse({"items": len(data["items"])})


def big_response(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"items": [{"n": i, "text": "x" * 40} for i in range(200_000)]})


def step(n: int) -> int:
    return n + 1


def many_calls(request: HttpRequest) -> HttpResponse:
    total = 0
    for i in range(int(request.GET["n"])):
        total = step(total) + i * 0
    return HttpResponse(str(total))


def many_locals(request: HttpRequest) -> HttpResponse:
    namespace: dict[str, Any] = {}
    exec(  # noqa: S102 - a function with 100 locals
        "def wide(request):\n"
        + "".join(f"    v{i} = {i}\n" for i in range(100))
        + "    long_text = 'y' * 5000\n    return v99\n",
        {"__name__": __name__},
        namespace,
    )
    return HttpResponse(str(namespace["wide"](request)))


urlpatterns = [
    path("upload/", upload_size),
    path("ignore/", ignore_body),
    path("raw-rows/", raw_rows),
    path("orm-rows/", orm_rows),
    path("big-json/", big_json_body),
    path("big-response/", big_response),
    path("many-calls/", many_calls),
    path("many-locals/", many_locals),
    path("", include("example.urls")),
]

pytestmark = pytest.mark.urls(__name__)
SETTINGS = recording_settings(CALLS_INCLUDE=[__name__])


def peak_of(func: Callable[[], Any]) -> tuple[int, Any]:
    """Peak bytes allocated (over what was allocated before) while ``func`` runs."""
    gc.collect()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        result = func()
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    return peak, result


def compare(name: str, func: Callable[[], Any], traces: Any) -> tuple[int, int, Any]:
    """The request's peak memory with recording off, then on; the response of each."""
    with override_settings(KOLO_DJANGO=RECORDING_OFF):
        started = time.perf_counter()
        without, off = peak_of(func)
        off_s = time.perf_counter() - started
    assert not traces.exists()
    with override_settings(KOLO_DJANGO=SETTINGS):
        started = time.perf_counter()
        with_recording, on = peak_of(func)
        on_s = time.perf_counter() - started
    print(
        f"[figures] bounds {name}: peak without recording={without / MB:.1f} MB, "
        f"with={with_recording / MB:.1f} MB, difference={(with_recording - without) / MB:+.1f} MB "
        f"({off_s:.1f} s / {on_s:.1f} s)"
    )
    assert with_recording - without <= RECORDER_BUDGET
    return without, with_recording, (off, on)


def _same(responses: tuple[Any, Any]) -> None:
    off, on = responses
    assert (on.status_code, on.content) == (off.status_code, off.content)


@pytest.mark.parametrize("view_reads_it", [True, False], ids=["view reads", "view ignores"])
def test_50mb_upload_keeps_memory_bounded(traces: Any, db: None, view_reads_it: bool) -> None:
    url = "/upload/" if view_reads_it else "/ignore/"
    content = b"0123456789abcdef" * (UPLOAD_BYTES // 16)

    def post() -> Any:
        upload = io.BytesIO(content)
        upload.name = "big.bin"
        return Client().post(url, {"file": upload, "note": "n" * 100_000})

    _without, _with, responses = compare(f"50 MB upload ({url})", post, traces)
    _same(responses)
    (document,) = documents(traces)
    body = document["request"]["body"]
    assert body["kind"] == "multipart"
    (info,) = body["files"]
    assert info["size"] == UPLOAD_BYTES and info["truncated"] is True
    assert len(info["base64"]) <= 4 * (16 * 1024) // 3 + 4  # MAX_FILE_BYTES
    # A form value longer than MAX_BODY_BYTES is cut, and the body says so.
    assert len(body["form"]["note"][0]) == 64 * 1024 and body["truncated"] is True
    assert traces.get().size < 100 * 1024


@pytest.mark.parametrize("how", ["iterate", "fetchall"])
def test_100k_row_raw_query_keeps_memory_bounded(traces: Any, db: None, how: str) -> None:
    _w, _r, responses = compare(
        f"{ROWS} rows, raw SQL ({how})", lambda: Client().get(f"/raw-rows/?how={how}"), traces
    )
    _same(responses)
    (document,) = documents(traces)
    # MySQL first raises its recursion limit with a SET statement.
    (sql,) = [e for e in events(document, "sql") if "WITH RECURSIVE" in e["sql"]]
    assert sql["rows_read"] == ROWS
    assert len(sql["rows"]) == 100 and sql["rows_truncated"] is True


def test_100k_row_orm_query_keeps_memory_bounded(traces: Any, db: None) -> None:
    from todos.models import Tag

    Tag.objects.bulk_create(
        (Tag(name=f"tag {i}", slug=f"tag-{i}") for i in range(ROWS)), batch_size=5000
    )
    _w, _r, responses = compare(
        f"{ROWS} rows, ORM iterator", lambda: Client().get("/orm-rows/"), traces
    )
    _same(responses)
    assert responses[1].json() == {"count": ROWS}
    (document,) = documents(traces)
    sql = events(document, "sql")
    assert sum(e.get("rows_read", 0) for e in sql) == ROWS
    (orm,) = events(document, "orm", model="todos.tag")
    # MAX_BACKING_ROWS (500) rows kept, the rest counted.
    assert len(orm["rows"]) == 500
    assert orm["rows_truncated"] is True and orm["rows_dropped"] == ROWS - 500


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=None)
def test_large_json_body_is_not_parsed_by_the_recorder(traces: Any, db: None) -> None:
    payload = json.dumps({"items": ["x" * 100] * 50_000, "password": "hunter2-long"})

    def post() -> Any:
        return Client().post("/big-json/", payload, content_type="application/json")

    compare("5 MB JSON request body", post, traces)
    (document,) = documents(traces)
    body = document["request"]["body"]
    assert body["kind"] == "raw" and body["truncated"] is True
    assert body["size"] == len(payload) and len(body["text"]) == 64 * 1024
    assert "hunter2-long" not in json.dumps(document)


def test_large_response_is_cut(traces: Any, db: None) -> None:
    compare("10 MB JSON response", lambda: Client().get("/big-response/"), traces)
    (document,) = documents(traces)
    response = document["response"]
    assert response["content_truncated"] is True and response["size"] > 10 * MB
    assert len(response["content"]) == 128 * 1024 and "json" not in response


def test_events_are_capped_and_memory_does_not_grow_with_them(traces: Any, db: None) -> None:
    peaks = {}
    for n in (20_000, 200_000):
        _without, with_recording, responses = compare(
            f"{2 * n} call events", lambda n=n: Client().get(f"/many-calls/?n={n}"), traces
        )
        _same(responses)
        peaks[n] = with_recording
        (document,) = documents(traces)
        traces.all().delete()
        assert len(document["events"]) == 10_000
        # Each call makes a call and a return event: the rest are counted.
        assert document["dropped_events"] >= 2 * n - 10_000
    # Ten times the calls, not ten times the memory.
    assert peaks[200_000] - peaks[20_000] <= 2 * MB, peaks


def test_locals_are_capped(traces: Any, db: None) -> None:
    with override_settings(KOLO_DJANGO=SETTINGS):
        assert Client().get("/many-locals/").content == b"99"
    (document,) = documents(traces)
    (call,) = [e for e in events(document, "call") if e["function"] == "wide"]
    (ret,) = events(document, "return", id=call["id"])
    assert len(ret["locals"]) == 26  # MAX_LOCALS, then the marker
    assert ret["locals"]["…"] == "77 more"
    assert all(len(v) <= 200 for v in ret["locals"].values())


# --- retention ----------------------------------------------------------------------------


def _bulk_traces(count: int, now: dt.datetime) -> None:
    from kolo_django.models import Trace

    data = trace.dumps({"schema_version": 1})
    batch = []
    for i in range(count):
        created = now - dt.timedelta(minutes=i)
        batch.append(
            Trace(
                id=trace.new_trace_id(int(created.timestamp() * 1000)),
                created_at=created,
                method="GET",
                path=f"/p/{i}/",
                document=data,
                size=len(data),
            )
        )
        if len(batch) == 5000:
            Trace.objects.using(storage.alias()).bulk_create(batch)
            batch = []
    Trace.objects.using(storage.alias()).bulk_create(batch)


def test_prune_100k_traces_in_batches_with_bounded_memory(traces: Any) -> None:
    count = 100_000
    now = timezone.now()
    started = time.perf_counter()
    _bulk_traces(count, now)
    created_s = time.perf_counter() - started
    assert traces.count() == count

    # By age first: 100,000 minutes is about 69 days; keep 30 days.
    started = time.perf_counter()
    with override_settings(KOLO_DJANGO=recording_settings(RETENTION_MAX_TRACES=None)):
        by_age_peak, by_age = peak_of(lambda: storage.prune(max_age_days=30))
    age_s = time.perf_counter() - started
    kept_by_age = 30 * 24 * 60
    assert abs(by_age - (count - kept_by_age)) <= 2
    started = time.perf_counter()
    by_count_peak, by_count = peak_of(
        lambda: storage.prune(max_traces=1000, max_age_days=None, batch_size=500)
    )
    count_s = time.perf_counter() - started
    assert traces.count() == 1000
    assert by_age + by_count == count - 1000
    # The newest are the ones kept.
    assert traces.order_by("-created_at").first().path == "/p/0/"
    print(
        f"[figures] retention: {count} traces created in {created_s:.1f} s; pruned {by_age} by "
        f"age in {age_s:.1f} s (peak {by_age_peak / MB:.2f} MB) and {by_count} by count in "
        f"{count_s:.1f} s (peak {by_count_peak / MB:.2f} MB)"
    )
    assert by_age_peak < 5 * MB and by_count_peak < 5 * MB
