"""Bad input to the commands: each case ends with one line saying what is
wrong and a non-zero exit, never a traceback.

The complete list, in one place (several are also covered next to the
feature, in test_kolo_traces.py and test_generation_hooks.py):

 1. unknown trace id                      (kolo_traces show, kolo_generate)
 2. malformed trace id                    (kolo_traces show/delete, kolo_generate)
 3. settings of the wrong type            (KOLO_DJANGO not a dict; a key of the wrong type)
 4. unknown style                         (kolo_generate --style)
 5. unwritable output path                (kolo_generate -o, kolo_traces export -o)
 6. missing template                      (kolo_generate --template)
 7. broken template                       (a Jinja2 syntax error)
 8. corrupt stored document               (kolo_traces show, kolo_generate)
 9. a document from a newer schema version (kolo_traces show, kolo_generate, import)
10. a trace with no request in it          (kolo_generate)
11. a trace naming a model or field that no longer exists: not an error, the
    test is generated from what remains and each skipped part is named on
    stderr (``skipped: ...``)
12. out-of-range options                  (--count 0, --max-traces 0, --test-name "1 x")
13. an import file that is not JSON lines
14. the real command line (subprocess): exit status 1, one ``CommandError:`` line,
    no traceback; argparse errors exit 2
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError, SystemCheckError
from django.test import override_settings

from kolo_django import storage, trace
from kolo_django.models import Trace
from tests.helpers_recording import MANAGE, recording_settings, server_env

UNKNOWN_ID = "trc_01ARZ3NDEKTSV4RRFFQ69G5FAV"


def one_line_error(command: str, *args: str, **options: Any) -> str:
    """The CommandError message of a command that must fail; checks it is one line."""
    with pytest.raises(CommandError) as info:
        call_command(command, *args, stdout=StringIO(), stderr=StringIO(), **options)
    message = str(info.value)
    assert message and "\n" not in message and "Traceback" not in message, message
    return message


def document(**changes: Any) -> dict[str, Any]:
    started = dt.datetime.now(dt.timezone.utc)
    base = {
        "schema_version": trace.SCHEMA_VERSION,
        "id": trace.new_trace_id(),
        "started_at": trace.encode_value(started),
        "duration_ms": 1.0,
        "request": {
            "method": "GET",
            "path": "/todos/",
            "query_string": "",
            "query": {},
            "headers": {},
            "body": {"kind": "empty"},
            "user": {"authenticated": False},
            "resolver": None,
        },
        "response": {"status_code": 200, "reason": "OK", "headers": {}, "redirect": None},
        "exception": None,
        "events": [],
        "dropped_events": 0,
        "faults": [],
        "databases": {"default": "sqlite"},
        "environment": {},
    }
    base.update(changes)
    return base


@pytest.fixture
def recorded(client: Any, seeded: None, traces: Any) -> dict[str, Any]:
    """A real trace: the todo list page."""
    assert client.get("/todos/").status_code == 200
    return storage.load(traces.get().id)


# 1. unknown id ------------------------------------------------------------------------------


def test_unknown_id(traces: Any) -> None:
    assert one_line_error("kolo_traces", "show", UNKNOWN_ID) == f"no trace with id {UNKNOWN_ID}"
    assert one_line_error("kolo_generate", UNKNOWN_ID) == f"no trace with id {UNKNOWN_ID}"
    message = one_line_error("kolo_traces", "delete", UNKNOWN_ID)
    assert message == f"no trace with id {UNKNOWN_ID}; nothing was deleted"


# 2. malformed id ----------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["trc_bad", "42", "TRC_01ARZ3NDEKTSV4RRFFQ69G5FAV"])
def test_malformed_id(traces: Any, bad: str) -> None:
    expected = f"{bad!r} is not a trace id (expected trc_ followed by 26 characters)"
    assert one_line_error("kolo_traces", "show", bad) == expected
    assert one_line_error("kolo_traces", "delete", bad) == expected
    # (kolo_generate strips the quotes around the id; see the report's note.)
    message = one_line_error("kolo_generate", bad)
    assert bad in message and message.endswith(expected.split("' ", 1)[-1])


# 3. settings of the wrong type -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "line"),
    [
        ("record please", "(kolo_django.E001) KOLO_DJANGO must be a dict, not str."),
        (
            {"TEST_STYLE": 5},
            "(kolo_django.E002) KOLO_DJANGO['TEST_STYLE'] is invalid: TEST_STYLE must be str, not int.",
        ),
        (
            {"MAX_EVENTS": "many"},
            "(kolo_django.E002) KOLO_DJANGO['MAX_EVENTS'] is invalid: MAX_EVENTS must be int, not str.",
        ),
        (
            {"REDACT_KEYS": "password"},
            "(kolo_django.E002) KOLO_DJANGO['REDACT_KEYS'] is invalid: REDACT_KEYS must be list or tuple, not str.",
        ),
    ],
)
def test_settings_of_the_wrong_type(traces: Any, value: Any, line: str) -> None:
    # Commands run the system checks first (call_command skips them unless asked).
    with override_settings(KOLO_DJANGO=value), pytest.raises(SystemCheckError) as info:
        call_command("kolo_traces", stdout=StringIO(), stderr=StringIO(), skip_checks=False)
    lines = str(info.value).splitlines()
    # Django's report of the checks; the problem itself is one line of it.
    assert any(item.endswith(line) for item in lines), lines
    assert "Traceback" not in str(info.value)


# 4. unknown style ---------------------------------------------------------------------------


def test_unknown_style(recorded: dict[str, Any]) -> None:
    message = one_line_error("kolo_generate", recorded["id"], "--style", "nose")
    assert message == "unknown style 'nose'; choose one of unittest, pytest, auto"


# 5. unwritable output path ---------------------------------------------------------------------


def test_unwritable_output_path(recorded: dict[str, Any], tmp_path: Path) -> None:
    a_file = tmp_path / "a-file.txt"
    a_file.write_text("not a folder")
    target = a_file / "test_x.py"
    message = one_line_error("kolo_generate", recorded["id"], "-o", str(target))
    assert message == f"cannot write {target}: Not a directory"
    missing = tmp_path / "missing" / "test_x.py"
    message = one_line_error("kolo_generate", recorded["id"], "-o", str(missing))
    assert message == f"cannot write {missing}: folder {missing.parent} does not exist"
    message = one_line_error("kolo_traces", "export", "-o", str(target))
    assert message.startswith(f"cannot write {target}: ")
    existing = tmp_path / "test_existing.py"
    existing.write_text("# mine\n")
    message = one_line_error("kolo_generate", recorded["id"], "-o", str(existing))
    assert message == f"{existing} exists; pass --force to overwrite it"
    assert existing.read_text() == "# mine\n"


# 6, 7. missing or broken template ---------------------------------------------------------------


def test_missing_template(recorded: dict[str, Any]) -> None:
    message = one_line_error(
        "kolo_generate", recorded["id"], "--template", "/nowhere/missing.py.j2"
    )
    assert message == "template /nowhere/missing.py.j2 does not exist"


def test_broken_template(recorded: dict[str, Any], tmp_path: Path) -> None:
    template = tmp_path / "broken.py.j2"
    template.write_text("{% extends 'kolo_django/pytest.py.j2' %}\n{% block header %}\n{% if %}\n")
    message = one_line_error(
        "kolo_generate", recorded["id"], "--style", "pytest", "--template", str(template)
    )
    assert message.startswith(f"template {template}, line 3:")


# 8. corrupt stored document ---------------------------------------------------------------------


def test_corrupt_stored_document(traces: Any) -> None:
    obj = storage.save_document(document())
    Trace.objects.filter(pk=obj.pk).update(document=b"\x00not zlib at all")
    for command, args in [("kolo_traces", ["show"]), ("kolo_generate", [])]:
        message = one_line_error(command, *args, obj.id)
        assert message.startswith(f"trace {obj.id}: the stored document is corrupt")
    # Valid zlib, but not JSON.
    Trace.objects.filter(pk=obj.pk).update(document=trace.zlib.compress(b"{not json"))
    assert one_line_error("kolo_generate", obj.id).startswith(
        f"trace {obj.id}: the stored document is corrupt"
    )


# 9. newer schema version ------------------------------------------------------------------------


def test_document_from_a_newer_schema(traces: Any, tmp_path: Path) -> None:
    newer = document(schema_version=trace.SCHEMA_VERSION + 1)
    obj = storage.save_document(document())
    Trace.objects.filter(pk=obj.pk).update(document=trace.dumps(newer))
    expected = (
        f"trace {obj.id}: the document has schema version {trace.SCHEMA_VERSION + 1}, newer "
        f"than this kolo_django understands ({trace.SCHEMA_VERSION}); upgrade kolo_django"
    )
    assert one_line_error("kolo_traces", "show", obj.id) == expected
    assert one_line_error("kolo_generate", obj.id) == expected
    lines = tmp_path / "newer.jsonl"
    lines.write_text(json.dumps({**newer, "id": trace.new_trace_id()}) + "\n")
    message = one_line_error("kolo_traces", "import", str(lines))
    assert "could not be imported" in message


# 10. a trace with no request ----------------------------------------------------------------------


@pytest.mark.parametrize("request_section", [None, {}, {"method": "GET"}])
def test_trace_with_no_request(traces: Any, request_section: Any) -> None:
    obj = storage.save_document(document(request=request_section))
    message = one_line_error("kolo_generate", obj.id)
    assert message == f"trace {obj.id} has no request to replay"


# 11. a model or field that no longer exists ---------------------------------------------------------


def test_vanished_model_and_field_generate_the_rest(recorded: dict[str, Any]) -> None:
    changed = json.loads(json.dumps(recorded))
    changed["id"] = trace.new_trace_id()
    # A model that was deleted, and a field removed from a model that remains.
    changed["events"].append(
        {
            "type": "orm",
            "model": "ghosts.ghost",
            "alias": "default",
            "source": "query",
            "fields": ["id", "name"],
            "rows": [[1, "boo"]],
            "t": 1.0,
        }
    )
    todo_rows = [e for e in changed["events"] if e["type"] == "orm" and e["model"] == "todos.todo"]
    assert todo_rows
    for event in todo_rows:
        event["fields"].append("vanished_column")
        for row in event["rows"]:
            row.append("gone")
    storage.save_document(changed)
    stdout, stderr = StringIO(), StringIO()
    call_command("kolo_generate", changed["id"], "--style", "pytest", stdout=stdout, stderr=stderr)
    assert stderr.getvalue().splitlines() == [
        "skipped: model ghosts.ghost no longer exists: its rows were skipped",
        "skipped: field todos.Todo.vanished_column no longer exists: its values were skipped",
    ]
    source = stdout.getvalue()
    compile(source, "generated_test.py", "exec")
    assert "def test_" in source
    # Named only in the comment that says it was skipped, never seeded.
    code = [line for line in source.splitlines() if not line.lstrip().startswith("#")]
    assert not [line for line in code if "vanished_column" in line or "ghost" in line.lower()]


# 12, 13. out-of-range options, a broken import file ------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("list", "--count", "0"), "--count must be at least 1, not 0"),
        (("prune", "--max-traces", "0"), "--max-traces must be at least 1, not 0"),
        (("prune", "--max-age-days", "-1"), "--max-age-days must be a number above 0, not -1.0"),
        (
            ("list", "--status", "teapot"),
            "--status must be a status code such as 404 or a class such as 2xx, not 'teapot'",
        ),
    ],
)
def test_out_of_range_options(traces: Any, args: tuple[str, ...], message: str) -> None:
    assert one_line_error("kolo_traces", *args) == message


def test_bad_test_name(recorded: dict[str, Any]) -> None:
    message = one_line_error("kolo_generate", recorded["id"], "--test-name", "1 x")
    assert message == "--test-name '1 x' is not a Python identifier"


def test_import_file_that_is_not_json_lines(traces: Any, tmp_path: Path) -> None:
    lines = tmp_path / "notes.txt"
    lines.write_text("hello\n{}\n")
    message = one_line_error("kolo_traces", "import", str(lines))
    assert message.startswith(f"2 lines of {lines} could not be imported")
    assert not traces.exists()


# 14. the real command line ----------------------------------------------------------------------


def test_command_line_exit_status(tmp_path: Path) -> None:
    database = {"ENGINE": "django.db.backends.sqlite3", "NAME": str(tmp_path / "db.sqlite3")}
    env = server_env(tmp_path, f"DATABASES = {{'default': {database!r}}}\nKOLO_DJANGO = {{}}\n")

    def manage(*args: str, extra_env: dict[str, str] | None = None) -> Any:
        return subprocess.run(
            [sys.executable, str(MANAGE), *args],
            env={**env, **(extra_env or {})},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    assert manage("migrate", "-v", "0").returncode == 0
    cases = [
        (("kolo_generate", UNKNOWN_ID), f"CommandError: no trace with id {UNKNOWN_ID}"),
        (("kolo_generate", "trc_bad"), "CommandError: 'trc_bad' is not a trace id"),
        (("kolo_traces", "show", UNKNOWN_ID), f"CommandError: no trace with id {UNKNOWN_ID}"),
        (("kolo_generate", UNKNOWN_ID, "--style", "nose"), "CommandError: unknown style 'nose'"),
    ]
    for args, start in cases:
        result = manage(*args)
        assert result.returncode == 1, (args, result.stderr)
        assert result.stdout == ""
        assert result.stderr.startswith(start), result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "Traceback" not in result.stderr
    # Settings of the wrong type stop every command, through the system checks.
    (tmp_path / "wrong_settings.py").write_text(
        "from server_settings import *  # noqa\nKOLO_DJANGO = {'MAX_EVENTS': 'many'}\n"
    )
    result = manage("kolo_traces", extra_env={"DJANGO_SETTINGS_MODULE": "wrong_settings"})
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "(kolo_django.E002) KOLO_DJANGO['MAX_EVENTS'] is invalid" in result.stderr
    # A usage error is argparse's: exit status 2.
    usage = manage("kolo_traces", "list", "--count", "x")
    assert usage.returncode == 2 and "Traceback" not in usage.stderr
    assert usage.stderr.strip().splitlines()[-1].endswith("invalid int value: 'x'")


def test_recording_settings_helper_is_valid() -> None:
    from kolo_django.conf import config_errors

    assert all(not config_errors(k, v) for k, v in recording_settings().items())
