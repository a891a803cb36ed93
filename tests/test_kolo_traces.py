from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from kolo_django import storage, trace
from kolo_django.models import Trace

REPO_ROOT = Path(__file__).resolve().parent.parent
UNKNOWN_ID = "trc_01ARZ3NDEKTSV4RRFFQ69G5FAV"


def run(*args: str, **options: Any) -> tuple[str, str]:
    stdout, stderr = StringIO(), StringIO()
    call_command("kolo_traces", *args, stdout=stdout, stderr=stderr, **options)
    return stdout.getvalue(), stderr.getvalue()


def fails(*args: str, **options: Any) -> str:
    with pytest.raises(CommandError) as info:
        run(*args, **options)
    message = str(info.value)
    assert "\n" not in message
    return message


def make_document(
    *,
    method: str = "GET",
    path: str = "/todos/",
    status: int = 200,
    age: dt.timedelta = dt.timedelta(0),
    events: list[dict[str, Any]] | None = None,
    exception: dict[str, Any] | None = None,
) -> dict[str, Any]:
    started = dt.datetime.now(dt.timezone.utc) - age
    return {
        "schema_version": trace.SCHEMA_VERSION,
        "id": trace.new_trace_id(int(started.timestamp() * 1000)),
        "started_at": trace.encode_value(started),
        "duration_ms": 12.5,
        "request": {
            "method": method,
            "path": path,
            "query_string": "",
            "user": {"authenticated": False},
            "resolver": {"view": "todos.views.todo_list", "view_name": "todo-list"},
        },
        "response": {"status_code": status, "reason": "OK", "redirect": None},
        "exception": exception,
        "events": events or [],
        "dropped_events": 0,
        "faults": [],
        "databases": {"default": "sqlite"},
        "environment": {},
    }


def store(**kwargs: Any) -> Trace:
    return storage.save_document(make_document(**kwargs))


def stored_ids() -> set[str]:
    return set(Trace.objects.values_list("id", flat=True))


def corrupt(obj: Trace) -> None:
    Trace.objects.filter(pk=obj.pk).update(document=b"not zlib at all")


# --- list ------------------------------------------------------------------------------


def test_list_without_traces(traces: Any) -> None:
    assert run()[0] == "No traces.\n"
    assert json.loads(run("--json")[0]) == []


def test_bare_command_is_a_table_newest_first(traces: Any) -> None:
    old = store(path="/old/", age=dt.timedelta(hours=2))
    new = store(method="POST", path="/new/", status=302)
    lines = run()[0].splitlines()
    assert lines[0].split() == [
        "id",
        "created",
        "method",
        "status",
        "ms",
        "queries",
        "size",
        "path",
    ]
    assert [line.split()[0] for line in lines[1:]] == [new.id, old.id]
    assert lines[1].split()[3:6] == ["POST", "302", "12.5"]
    assert lines[1].endswith("/new/")


def test_bare_command_json_with_count(traces: Any) -> None:
    created = [store(path=f"/p{i}/", age=dt.timedelta(minutes=10 - i)) for i in range(4)]
    data = json.loads(run("--count", "2", "--json")[0])
    assert [item["id"] for item in data] == [created[3].id, created[2].id]
    first = data[0]
    for key in ("id", "method", "path", "status_code", "created_at", "duration_ms", "query_count"):
        assert key in first
    assert first["path"] == "/p3/"
    assert first["status_code"] == 200
    assert dt.datetime.fromisoformat(first["created_at"]) == created[3].created_at
    assert {"view_name", "size", "event_count"} <= set(first)


def test_list_subcommand_and_options_on_either_side(traces: Any) -> None:
    for i in range(3):
        store(age=dt.timedelta(minutes=i))
    assert len(json.loads(run("list", "--count", "1", "--json")[0])) == 1
    # Options given before the subcommand are not reset by its defaults.
    assert len(json.loads(run("--count", "2", "--json", "list")[0])) == 2
    assert len(json.loads(run("list", "--json")[0])) == 3
    assert len(json.loads(run(count=1, as_json=True)[0])) == 1


def test_list_default_count_is_20(traces: Any) -> None:
    for i in range(21):
        store(age=dt.timedelta(seconds=i))
    assert len(json.loads(run("--json")[0])) == 20


def test_list_filters(traces: Any) -> None:
    get_ok = store(method="GET", path="/todos/1/", status=200)
    post_redirect = store(method="POST", path="/todos/new/", status=302)
    missing = store(method="GET", path="/Missing/", status=404)

    def ids(*args: str) -> set[str]:
        return {item["id"] for item in json.loads(run("list", "--json", *args)[0])}

    assert ids("--method", "post") == {post_redirect.id}
    assert ids("--status", "2xx") == {get_ok.id}
    assert ids("--status", "3XX") == {post_redirect.id}
    assert ids("--status", "404") == {missing.id}
    assert ids("--status", "500") == set()
    assert ids("--path-contains", "todos") == {get_ok.id, post_redirect.id}
    assert ids("--path-contains", "missing") == {missing.id}
    assert ids("--method", "GET", "--path-contains", "/todos/") == {get_ok.id}


def test_list_never_loads_documents(traces: Any) -> None:
    corrupt(store(path="/broken/"))
    with CaptureQueriesContext(connection) as queries:
        out = run()[0]
        data = json.loads(run("--json")[0])
    assert "/broken/" in out
    assert data[0]["path"] == "/broken/"
    assert queries.captured_queries
    assert not any('"document"' in q["sql"] for q in queries.captured_queries)


def test_list_verbosity(traces: Any) -> None:
    obj = store()
    assert run("-v", "0")[0] == f"{obj.id}\n"
    assert run("list", "-v", "0")[0] == f"{obj.id}\n"
    header = run("list", "-v", "2")[0].splitlines()[0].split()
    assert header[-3:] == ["events", "view", "path"]


def test_list_recorded_request(client: Any, traces: Any, seeded: Any) -> None:
    client.get("/todos/")
    (item,) = json.loads(run("--json")[0])
    assert item["method"] == "GET"
    assert item["path"] == "/todos/"
    assert item["status_code"] == 200
    assert item["view_name"] == "todo-list"
    assert item["query_count"] > 0
    assert item["duration_ms"] > 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--count", "0"), "--count must be at least 1, not 0"),
        (("list", "--count", "-3"), "--count must be at least 1, not -3"),
        (("list", "--count", "many"), "invalid int value: 'many'"),
        (("list", "--status", "ok"), "--status must be a status code such as 404"),
        (("list", "--status", "2x"), "--status must be a status code such as 404"),
        (("frobnicate",), "invalid choice: 'frobnicate'"),
    ],
)
def test_list_bad_input(traces: Any, args: tuple[str, ...], message: str) -> None:
    assert message in fails(*args)


# --- show ------------------------------------------------------------------------------


def test_show_recorded_request(client: Any, traces: Any, seeded: Any) -> None:
    client.get("/report/?week=2")
    (obj,) = Trace.objects.all()
    lines = run("show", obj.id)[0].splitlines()
    assert lines[0] == f"{obj.id}  GET /report/?week=2"
    text = "\n".join(lines)
    assert "Status    200 OK" in text
    assert "View      todos.views.report (report)" in text
    assert "User      anonymous" in text
    assert "Duration  " in text
    assert "sql 1" in text and "orm 2" in text
    assert "SQL (1)" in text
    from django.db import connection

    q = connection.ops.quote_name
    assert "  [raw " in text and f"SELECT l.{q('name')}, COUNT(t.{q('id')}) FROM" in text


def test_show_summary_sections(traces: Any) -> None:
    long_sql = "SELECT " + ", ".join(f'"col_{i}"' for i in range(60)) + ' FROM "todos_todo"'
    events = [
        {"type": "sql", "sql": long_sql, "origin": "orm", "duration_ms": 1.25},
        {
            "type": "sql",
            "sql": "INSERT INTO x\n  VALUES (1)",
            "origin": "raw",
            "error": "IntegrityError: no",
        },
        {
            "type": "http",
            "library": "requests",
            "method": "GET",
            "url": "http://api.example.test/weather?city=Paris",
            "status": 200,
            "duration_ms": 3.0,
        },
        {
            "type": "mail",
            "subject": "Todo: milk",
            "from_email": "todos@example.com",
            "to": ["a@example.com"],
        },
        {"type": "log", "logger": "todos", "level": "WARNING", "message": "hm"},
    ]
    exception = {"type": "builtins.ValueError", "message": "bad\nvalue", "traceback": "..."}
    obj = store(events=events, status=500, exception=exception)
    out = run("show", obj.id)[0]
    assert "Events    5: sql 2, http 1, log 1, mail 1" in out
    sql_lines = [line for line in out.splitlines() if line.startswith("  [")]
    assert sql_lines[0].startswith("  [orm 1.25 ms] SELECT")
    assert sql_lines[0].endswith("…")
    assert len(sql_lines[0]) < len(long_sql)
    assert sql_lines[1] == "  [raw 0.00 ms] INSERT INTO x VALUES (1)  !! IntegrityError: no"
    assert (
        "HTTP (1)\n  GET http://api.example.test/weather?city=Paris -> 200 (3.0 ms, requests)"
        in out
    )
    assert "Mail (1)\n  'Todo: milk' from todos@example.com to a@example.com" in out
    assert "Exception\n  builtins.ValueError: bad value" in out
    # More verbosity: SQL in full.
    assert '"col_59" FROM "todos_todo"' in run("show", obj.id, "-v", "2")[0]


def test_show_json_prints_the_document(traces: Any) -> None:
    obj = store(events=[{"type": "sql", "sql": "SELECT 1"}])
    out = run("show", obj.id, "--json")[0]
    assert json.loads(out) == storage.load(obj.id)
    assert out.startswith("{\n  ")


def test_show_bad_ids(traces: Any) -> None:
    assert fails("show", "trc_nope") == (
        "'trc_nope' is not a trace id (expected trc_ followed by 26 characters)"
    )
    assert "is not a trace id" in fails("show", UNKNOWN_ID.lower())
    assert fails("show", UNKNOWN_ID) == f"no trace with id {UNKNOWN_ID}"
    assert "the following arguments are required: TRACE_ID" in fails("show")


def test_show_corrupt_document(traces: Any) -> None:
    obj = store()
    corrupt(obj)
    message = fails("show", obj.id)
    assert message.startswith(f"trace {obj.id}: the stored document is corrupt")
    assert message == fails("show", obj.id, "--json")
    assert Trace.objects.get(pk=obj.pk).document == b"not zlib at all"


def test_show_newer_schema(traces: Any) -> None:
    document = make_document()
    obj = storage.save_document(document)
    Trace.objects.filter(pk=obj.pk).update(document=trace.dumps({**document, "schema_version": 99}))
    assert "newer than this kolo_django understands" in fails("show", obj.id)


def test_show_malformed_document(traces: Any) -> None:
    document = make_document()
    obj = storage.save_document(document)
    Trace.objects.filter(pk=obj.pk).update(document=trace.dumps({**document, "request": ["x"]}))
    assert fails("show", obj.id).startswith(f"trace {obj.id}: the document is malformed")
    assert json.loads(run("show", obj.id, "--json")[0])["request"] == ["x"]


# --- delete ----------------------------------------------------------------------------


def test_delete(traces: Any) -> None:
    first, second, kept = store(), store(), store()
    out, _ = run("delete", first.id, second.id, first.id)
    assert out == "Deleted 2 traces.\n"
    assert stored_ids() == {kept.id}
    assert run("delete", kept.id, "-v", "0")[0] == ""
    assert stored_ids() == set()


def test_delete_one(traces: Any) -> None:
    obj = store()
    assert run("delete", obj.id)[0] == "Deleted 1 trace.\n"


def test_delete_unknown_ids_deletes_nothing(traces: Any) -> None:
    obj = store()
    other = "trc_01ARZ3NDEKTSV4RRFFQ69G5FAW"
    message = fails("delete", obj.id, UNKNOWN_ID, other)
    assert message == f"no trace with id {UNKNOWN_ID}, {other}; nothing was deleted"
    assert stored_ids() == {obj.id}


def test_delete_malformed_ids_deletes_nothing(traces: Any) -> None:
    obj = store()
    message = fails("delete", obj.id, "trc_1", "42")
    assert message == ("'trc_1', '42' are not trace ids (expected trc_ followed by 26 characters)")
    assert stored_ids() == {obj.id}
    assert "the following arguments are required: TRACE_ID" in fails("delete")


# --- prune -----------------------------------------------------------------------------


def test_prune_max_traces(traces: Any) -> None:
    objs = [store(age=dt.timedelta(minutes=5 - i)) for i in range(5)]
    assert run("prune", "--max-traces", "2")[0] == "Deleted 3 traces.\n"
    assert stored_ids() == {objs[3].id, objs[4].id}


def test_prune_max_age_days(traces: Any) -> None:
    old = store(age=dt.timedelta(days=3))
    recent = store(age=dt.timedelta(hours=12))
    assert run("prune", "--max-age-days", "1")[0] == "Deleted 1 trace.\n"
    assert stored_ids() == {recent.id}
    assert run("prune", "--max-age-days", "0.25")[0] == "Deleted 1 trace.\n"
    assert old.id not in stored_ids()


def test_prune_uses_settings_as_defaults(traces: Any, settings: Any) -> None:
    objs = [store(age=dt.timedelta(minutes=5 - i)) for i in range(3)]
    settings.KOLO_DJANGO = {**settings.KOLO_DJANGO, "RETENTION_MAX_TRACES": 1}
    assert run("prune", "-v", "0")[0] == ""
    assert stored_ids() == {objs[2].id}


def test_prune_without_limits(traces: Any, settings: Any) -> None:
    store(age=dt.timedelta(days=400))
    settings.KOLO_DJANGO = {
        **settings.KOLO_DJANGO,
        "RETENTION_MAX_TRACES": None,
        "RETENTION_MAX_AGE_DAYS": None,
    }
    assert "No retention limit is set" in run("prune")[0]
    assert len(stored_ids()) == 1


@pytest.mark.parametrize("days", [float("inf"), float("nan"), -1, 0])
def test_unusable_age_setting_is_reported_and_ignored(
    traces: Any, settings: Any, days: float
) -> None:
    from django.core.checks import Tags, run_checks

    store(age=dt.timedelta(days=30))
    settings.KOLO_DJANGO = {**settings.KOLO_DJANGO, "RETENTION_MAX_AGE_DAYS": days}
    errors = [m for m in run_checks(tags=[Tags.compatibility]) if m.id == "kolo_django.E002"]
    assert any("RETENTION_MAX_AGE_DAYS" in m.msg for m in errors)
    # The documented default (14 days) applies until the setting is fixed.
    assert run("prune")[0] == "Deleted 1 trace.\n"
    assert not stored_ids()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--max-traces", "0"), "--max-traces must be at least 1, not 0"),
        (("--max-age-days", "-1"), "--max-age-days must be a number above 0, not -1.0"),
        (("--max-age-days", "0"), "--max-age-days must be a number above 0, not 0.0"),
        (("--max-age-days", "nan"), "--max-age-days must be a number above 0, not nan"),
        (("--max-age-days", "inf"), "--max-age-days must be a number above 0, not inf"),
        (("--max-traces", "some"), "invalid int value: 'some'"),
    ],
)
def test_prune_bad_input(traces: Any, args: tuple[str, ...], message: str) -> None:
    store(age=dt.timedelta(days=30))
    assert message in fails("prune", *args)
    assert len(stored_ids()) == 1


# --- export ----------------------------------------------------------------------------


def test_export_all_to_stdout_oldest_first(traces: Any) -> None:
    old = store(age=dt.timedelta(hours=1))
    new = store()
    out, err = run("export")
    lines = out.splitlines()
    assert [json.loads(line) for line in lines] == [storage.load(old.id), storage.load(new.id)]
    assert err == ""


def test_export_ids_to_file(traces: Any, tmp_path: Path) -> None:
    first, second, _ = store(), store(), store()
    target = tmp_path / "out.jsonl"
    out, _ = run("export", second.id, first.id, "-o", str(target))
    assert out == f"Exported 2 traces to {target}.\n"
    lines = target.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["id"] for line in lines] == [second.id, first.id]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]


def test_export_bad_ids_write_nothing(traces: Any, tmp_path: Path) -> None:
    obj = store()
    target = tmp_path / "out.jsonl"
    target.write_text("previous export\n")
    message = fails("export", obj.id, UNKNOWN_ID, "-o", str(target))
    assert message == f"no trace with id {UNKNOWN_ID}; nothing was exported"
    assert "is not a trace id" in fails("export", "nope", "-o", str(target))
    assert target.read_text() == "previous export\n"


def test_export_reports_corrupt_documents(traces: Any, tmp_path: Path) -> None:
    good = store(age=dt.timedelta(minutes=1))
    bad = store()
    corrupt(bad)
    target = tmp_path / "out.jsonl"
    stdout, stderr = StringIO(), StringIO()
    with pytest.raises(CommandError) as info:
        call_command("kolo_traces", "export", "-o", str(target), stdout=stdout, stderr=stderr)
    assert str(info.value) == f"1 trace could not be exported: {bad.id}"
    assert f"trace {bad.id}: the stored document is corrupt" in stderr.getvalue()
    assert [json.loads(line)["id"] for line in target.read_text().splitlines()] == [good.id]


def test_export_to_missing_directory(traces: Any, tmp_path: Path) -> None:
    store()
    target = tmp_path / "missing" / "out.jsonl"
    assert fails("export", "-o", str(target)).startswith(f"cannot write {target}:")


# --- import ----------------------------------------------------------------------------


def test_export_import_round_trip(traces: Any, tmp_path: Path) -> None:
    objs = [store(age=dt.timedelta(minutes=2 - i)) for i in range(2)]
    documents = {obj.id: storage.load(obj.id) for obj in objs}
    target = tmp_path / "traces.jsonl"
    run("export", "-o", str(target))
    Trace.objects.all().delete()
    out, err = run("import", str(target))
    assert out == f"Imported 2 traces from {target}, skipped 0 already stored, 0 failed.\n"
    assert err == ""
    assert {obj.id: storage.load(obj.id) for obj in Trace.objects.all()} == documents
    restored = Trace.objects.get(pk=objs[0].id)
    assert (restored.created_at, restored.path, restored.query_count) == (
        objs[0].created_at,
        objs[0].path,
        objs[0].query_count,
    )


def test_import_skips_existing_ids_without_changing_them(traces: Any, tmp_path: Path) -> None:
    obj = store(path="/original/")
    document = storage.load(obj.id)
    fresh = make_document(path="/fresh/")
    target = tmp_path / "in.jsonl"
    lines = [json.dumps({**document, "request": {**document["request"], "path": "/changed/"}})]
    target.write_text("\n".join([*lines, json.dumps(fresh)]) + "\n")
    out, _ = run("import", str(target))
    assert f"line 1: {obj.id} is already stored; skipped" in out
    assert out.endswith(
        "Imported 1 trace from " + str(target) + ", skipped 1 already stored, 0 failed.\n"
    )
    assert storage.load(obj.id)["request"]["path"] == "/original/"
    assert Trace.objects.get(pk=obj.id).path == "/original/"
    assert storage.load(fresh["id"]) == fresh


def test_import_reports_bad_lines_and_keeps_going(traces: Any, tmp_path: Path) -> None:
    first, last = make_document(), make_document()
    lines = [
        json.dumps(first),
        "{not json",
        "[1, 2]",
        json.dumps({**make_document(), "schema_version": 99}),
        json.dumps({**make_document(), "id": "trc_short"}),
        "",
        json.dumps({**make_document(), "events": None}),
        json.dumps({**make_document(), "started_at": {"$t": "datetime", "v": "yesterday"}}),
        json.dumps(last),
    ]
    target = tmp_path / "in.jsonl"
    target.write_text("\n".join(lines) + "\n")
    stdout, stderr = StringIO(), StringIO()
    with pytest.raises(CommandError) as info:
        call_command("kolo_traces", "import", str(target), stdout=stdout, stderr=stderr)
    assert str(info.value) == f"6 lines of {target} could not be imported (line 2, 3, 4, 5, 7, 8)"
    errors = stderr.getvalue().splitlines()
    assert [e.split(":")[0] for e in errors] == [f"line {n}" for n in (2, 3, 4, 5, 7, 8)]
    assert errors[0].startswith("line 2: not JSON")
    assert "newer than this kolo_django understands" in errors[2]
    assert "no valid trace id" in errors[3]
    assert "Imported 2 traces" in stdout.getvalue()
    assert stored_ids() == {first["id"], last["id"]}


def test_import_non_utf8_line(traces: Any, tmp_path: Path) -> None:
    good = make_document()
    target = tmp_path / "in.jsonl"
    target.write_bytes(b"\xff\xfe{}\n" + json.dumps(good).encode() + b"\n")
    stderr = StringIO()
    with pytest.raises(CommandError, match=r"1 line of .* could not be imported \(line 1\)"):
        call_command("kolo_traces", "import", str(target), stdout=StringIO(), stderr=stderr)
    assert stderr.getvalue() == "line 1: the line is not UTF-8 text\n"
    assert stored_ids() == {good["id"]}


def test_import_from_stdin(traces: Any) -> None:
    document = make_document()
    out, _ = run("import", "-", stdin=StringIO(json.dumps(document) + "\n"))
    assert out == "Imported 1 trace from stdin, skipped 0 already stored, 0 failed.\n"
    assert storage.load(document["id"]) == document


def test_import_missing_file(traces: Any, tmp_path: Path) -> None:
    target = tmp_path / "nope.jsonl"
    assert fails("import", str(target)) == f"cannot read {target}: No such file or directory"
    assert "the following arguments are required: FILE" in fails("import")


# --- the real command line -------------------------------------------------------------


def test_command_line_exit_codes(traces: Any, tmp_path: Path) -> None:
    """Runs ``manage.py kolo_traces`` in a subprocess, on its own SQLite file."""
    settings_module = tmp_path / "kolo_cli_settings.py"
    settings_module.write_text(
        "from tests.settings import *  # noqa: F403\n"
        "DATABASES = {'default': {'ENGINE': 'django.db.backends.sqlite3', "
        f"'NAME': {str(tmp_path / 'db.sqlite3')!r}}}}}\n"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "kolo_cli_settings",
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO_ROOT)]),
    }

    def manage(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=REPO_ROOT / "example_project",
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    unmigrated = manage("kolo_traces")
    assert unmigrated.returncode == 1
    assert unmigrated.stderr.startswith("CommandError: database error: no such table")
    assert len(unmigrated.stderr.strip().splitlines()) == 1

    assert manage("migrate", "-v", "0").returncode == 0
    document = make_document(path="/from-cli/")
    lines = tmp_path / "in.jsonl"
    lines.write_text(json.dumps(document) + "\n")
    assert manage("kolo_traces", "import", str(lines)).returncode == 0

    listed = manage("kolo_traces", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [item["id"] for item in json.loads(listed.stdout)] == [document["id"]]

    for bad_id, message in [
        ("trc_bad", "CommandError: 'trc_bad' is not a trace id"),
        (UNKNOWN_ID, f"CommandError: no trace with id {UNKNOWN_ID}"),
    ]:
        shown = manage("kolo_traces", "show", bad_id)
        assert shown.returncode == 1
        assert shown.stdout == ""
        assert shown.stderr.startswith(message)
        assert len(shown.stderr.strip().splitlines()) == 1
        assert "Traceback" not in shown.stderr

    broken = manage("kolo_traces", "delete", document["id"], UNKNOWN_ID)
    assert broken.returncode == 1 and "Traceback" not in broken.stderr
    usage = manage("kolo_traces", "list", "--count", "x")
    assert usage.returncode == 2
    assert usage.stderr.strip().splitlines()[-1].endswith("invalid int value: 'x'")
    assert manage("kolo_traces", "list", "-v", "0").stdout == document["id"] + "\n"
