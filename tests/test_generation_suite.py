"""``kolo_generate --since/--until/--last/--suite -o DIR``: a deduplicated suite, one
module per view, with an index; --verify and --coverage run it."""

from __future__ import annotations

import ast
import datetime as dt
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import override_settings

from kolo_django.generation import suite as suites

pytestmark = pytest.mark.django_db


def run(*args: str, stderr: Any = None) -> str:
    out, err = StringIO(), stderr or StringIO()
    try:
        call_command("kolo_generate", *args, stdout=out, stderr=err)
    except CommandError:
        print(err.getvalue())  # shown by pytest when the test fails
        raise
    return out.getvalue()


def fails(*args: str) -> str:
    with pytest.raises(CommandError) as info:
        run(*args)
    message = str(info.value)
    assert "\n" not in message
    return message


@pytest.fixture
def session_ids(client: Any, seeded: None, traces: Any) -> list[str]:
    """Eight requests of one user, three of them repeats of an earlier outcome."""
    from todos.models import Todo, TodoList

    pks = list(Todo.objects.order_by("pk").values_list("pk", flat=True)[:2])
    client.get("/todos/")
    client.get("/todos/?page=2")
    for pk in pks:
        assert client.get(f"/todos/{pk}/").status_code == 200
    assert client.get("/todos/99999/").status_code == 404
    client.force_login(get_user_model().objects.get(username="alice"))
    form = {"title": "From a session", "priority": 3, "estimate_hours": "1"}
    form["todo_list"] = TodoList.objects.order_by("pk").first().pk
    assert client.post("/todos/new/", form).status_code == 302
    assert client.post("/todos/new/", {**form, "title": ""}).status_code == 200
    assert client.post("/todos/new/", {**form, "title": "Another"}).status_code == 302
    return list(traces.order_by("created_at", "id").values_list("pk", flat=True))


def defined_tests(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    return [
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test")
    ]


@pytest.mark.parametrize("style", ["unittest", "pytest"])
def test_one_module_per_view_one_test_per_outcome(
    session_ids: list[str], tmp_path: Path, style: str
) -> None:
    out = tmp_path / "suite"
    summary = run("--last", str(len(session_ids)), "-o", str(out), "--style", style)
    assert len(session_ids) == 8
    files = sorted(p.name for p in out.iterdir())
    assert files == [
        "INDEX.md",
        "__init__.py",
        "test_todo_create.py",
        "test_todo_detail.py",
        "test_todo_list.py",
    ]
    assert defined_tests(out / "test_todo_list.py") == ["test_get_todo_list_ok"]
    assert sorted(defined_tests(out / "test_todo_detail.py")) == [
        "test_get_todo_detail_not_found",
        "test_get_todo_detail_ok",
    ]
    assert sorted(defined_tests(out / "test_todo_create.py")) == [
        "test_post_todo_create_ok",
        "test_post_todo_create_redirects",
    ]
    assert "wrote 5 tests in 3 modules" in summary and "(3 duplicates" in summary
    detail = (out / "test_todo_detail.py").read_text()
    # Imports and shared helpers appear once in a merged module.
    lines = detail.splitlines()
    imports = [line for line in lines if line.startswith(("import ", "from "))]
    assert len(imports) == len(set(imports))
    assert detail.count("def reset_sequences(") <= 1
    if style == "unittest":
        classes = [n for n in ast.walk(ast.parse(detail)) if isinstance(n, ast.ClassDef)]
        assert len({c.name for c in classes}) == 2
    index = (out / "INDEX.md").read_text()
    for trace_id in session_ids:
        assert trace_id in index
    assert f"| {session_ids[1]} | GET /todos/?page=2 | same as {session_ids[0]}" in index


def test_dedup_key_separates_outcomes_not_ids() -> None:
    def document(path: str, status: int, *writes: tuple[str, str], method: str = "POST") -> Any:
        return {
            "request": {"method": method, "path": path, "resolver": {"route": "todos/<int:pk>/"}},
            "response": {"status_code": status},
            "events": [{"type": "write", "op": op, "model": model} for op, model in writes],
        }

    update = ("update", "todos.todo")
    assert suites.dedup_key(document("/todos/1/", 302, update)) == suites.dedup_key(
        document("/todos/2/", 302, update)
    )
    assert suites.dedup_key(document("/todos/1/", 302, update)) != suites.dedup_key(
        document("/todos/1/", 200)
    )
    assert suites.dedup_key(document("/todos/1/", 302, update)) != suites.dedup_key(
        document("/todos/1/", 302, ("delete", "todos.todo"))
    )
    # A 301 and a 302 are one outcome; a session saved on the way is no write.
    assert suites.dedup_key(document("/todos/1/", 301)) == suites.dedup_key(
        document("/todos/1/", 302, ("update", "sessions.session"))
    )
    assert suites.dedup_key(document("/todos/1/", 200)) != suites.dedup_key(
        document("/todos/1/", 200, method="GET")
    )


def test_writes_without_signals_come_from_sql() -> None:
    document = {
        "events": [
            {"type": "sql", "statement": "update", "sql": 'UPDATE "todos_todo" SET "done" = 1'},
            {"type": "sql", "statement": "update", "sql": 'UPDATE "django_session" SET x = 1'},
            {"type": "sql", "statement": "select", "sql": 'SELECT * FROM "todos_tag"'},
        ]
    }
    assert suites.writes_of(document) == (("update", "todos_todo"),)


def test_merge_keeps_shared_helpers_once_and_refuses_clashes() -> None:
    first = '"""Doc."""\n\nimport json\n\n\ndef helper():\n    return 1\n\n\ndef test_a():\n    assert helper()\n'
    second = "import json\nimport re\n\n\ndef helper():\n    return 1\n\n\ndef test_b():\n    assert re\n"
    merged = suites.merge_sources([first, second], "none")
    assert merged.startswith('"""Doc."""')
    assert merged.count("def helper(") == 1 and merged.count("import json") == 1
    assert "def test_a(" in merged and "def test_b(" in merged
    compile(merged, "merged.py", "exec")
    other = "def helper():\n    return 2\n\n\ndef test_c():\n    pass\n"
    with pytest.raises(suites.MergeConflict):
        suites.merge_sources([first, other], "none")


def test_selection_by_time_and_ids(session_ids: list[str], tmp_path: Path) -> None:
    assert "from 8 traces" in run("--since", "1h", "-o", str(tmp_path / "a"), "--style", "pytest")
    later = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1)).isoformat()
    assert fails("--since", later, "-o", str(tmp_path / "b")) == (
        "no traces were recorded in that time"
    )
    assert fails("--until", "2000-01-01", "-o", str(tmp_path / "b")) == (
        "no traces were recorded in that time"
    )
    chosen = [session_ids[0], session_ids[4]]
    summary = run(*chosen, "--suite", "-o", str(tmp_path / "c"), "--style", "pytest")
    assert "wrote 2 tests in 2 modules" in summary and "from 2 traces" in summary


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "yesterday"], "--since 'yesterday' is not a time"),
        (["--last", "0"], "--last must be at least 1, not 0"),
        (["--last", "3"], "a suite is written into a folder: pass -o DIR"),
        (["--suite", "trc_01ARZ3NDEKTSV4RRFFQ69G5FAV", "-o", "x"], "no trace trc_01ARZ3ND"),
        (["--last", "2", "--test-name", "test_x", "-o", "x"], "--test-class and --test-name"),
        ([], "give one or more TRACE_IDs, or --since/--last for a suite"),
    ],
)
def test_bad_suite_options(session_ids: list[str], args: list[str], message: str) -> None:
    assert fails(*args).startswith(message)


def test_ids_and_time_together_are_refused(session_ids: list[str], tmp_path: Path) -> None:
    message = fails(session_ids[0], "--since", "1h", "-o", str(tmp_path))
    assert message == "give TRACE_IDs or --since/--until/--last, not both"


def test_existing_files_need_force(session_ids: list[str], tmp_path: Path) -> None:
    out = tmp_path / "suite"
    run("--last", "2", "-o", str(out), "--style", "pytest")
    assert fails("--last", "2", "-o", str(out), "--style", "pytest").endswith(
        "exists; pass --force to overwrite the suite"
    )
    run("--last", "2", "-o", str(out), "--style", "pytest", "--force")
    target = tmp_path / "file.py"
    target.write_text("")
    assert "is a file" in fails("--last", "2", "-o", str(target))


class Terminal(StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_only_on_a_terminal(session_ids: list[str], tmp_path: Path) -> None:
    terminal = Terminal()
    run("--last", "8", "-o", str(tmp_path / "a"), "--style", "pytest", stderr=terminal)
    assert "\rgenerating [" in terminal.getvalue() and "8/8" in terminal.getvalue()
    plain = StringIO()
    run("--last", "8", "-o", str(tmp_path / "b"), "--style", "pytest", stderr=plain)
    assert "\r" not in plain.getvalue()


def test_failures_parsed_from_both_runners() -> None:
    output = (
        "=" * 70
        + "\nFAIL: test_get_x_ok (suite.test_x.XTests.test_get_x_ok)\nReplays GET /x/.\n"
        + "-" * 70
        + "\nTraceback (most recent call last):\nAssertionError: 502 != 200\n\n"
        + "=" * 70
        + "\nERROR: suite.test_y (unittest.loader._FailedTest.suite.test_y)\n"
        + "-" * 70
        + "\nImportError: Failed to import test module: suite.test_y\n\n"
        + "-" * 70
        + "\nRan 3 tests in 0.1s\n"
    )
    assert suites.failures_unittest(output, {"test_x", "test_y", "test_z"}) == {
        ("test_x", "test_get_x_ok"): "AssertionError: 502 != 200",
        ("test_y", ""): "ImportError: Failed to import test module: suite.test_y",
    }
    junit = (
        '<testsuites><testsuite><testcase classname="suite.test_x" name="test_get_x_ok">'
        '<failure message="assert 502 == 200">...</failure></testcase>'
        '<testcase classname="" name="suite.test_y"><error message="collection failure"/>'
        '</testcase><testcase classname="suite.test_z" name="test_ok"/></testsuite></testsuites>'
    )
    assert suites.failures_junit(junit, {"test_x", "test_y", "test_z"}) == {
        ("test_x", "test_get_x_ok"): "assert 502 == 200",
        ("test_y", ""): "collection failure",
    }


def test_verify_leaves_out_failing_tests_and_coverage_reports_views(
    client: Any, seeded: None, traces: Any, api_url: str, tmp_path: Path, monkeypatch: Any
) -> None:
    """The weather page is recorded against a stub whose URL the test settings do not
    name, so its test fails when run: it is left out, with the reason in the index."""
    monkeypatch.setenv("KOLO_TEST_PG_NAME", "kolo_django_suite_verify")
    # manage.py runs from example_project; these settings live in the repository's tests/.
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).resolve().parent.parent))
    assert client.get("/weather/").status_code == 200
    with override_settings(EXAMPLE_API_URL="http://api.example.test"):
        assert client.get("/stats/").status_code == 200
    out = Path(__file__).resolve().parent.parent / "example_project" / "kolo_suite_check"
    try:
        summary = run("--last", "2", "-o", str(out), "--style", "unittest", "--coverage")
        index = (out / "INDEX.md").read_text()
        assert sorted(p.name for p in out.glob("test_*.py")) == ["test_stats.py"]
    finally:
        import shutil

        shutil.rmtree(out, ignore_errors=True)
    assert "wrote 1 test in 1 module " in summary
    assert "verified: 1 test pass (unittest)" in summary
    assert "| GET /weather/ | failed when run: AssertionError: 502 != 200 |" in index
    assert "## Coverage" in index and "todos/views.py" in index
    assert "coverage: " in summary and "views: " in summary


def test_a_trace_that_breaks_generation_is_skipped_and_the_next_stands_in(
    session_ids: list[str], tmp_path: Path, monkeypatch: Any
) -> None:
    real = suites.generate

    def breaks_on_first(documents: list[dict[str, Any]], **options: Any) -> Any:
        if documents[0]["id"] == session_ids[0]:
            raise RuntimeError("boom")
        return real(documents, **options)

    monkeypatch.setattr(suites, "generate", breaks_on_first)
    out = tmp_path / "suite"
    summary = run("--last", "8", "-o", str(out), "--style", "pytest")
    assert "wrote 5 tests" in summary and "(2 duplicates, 1 skipped otherwise)" in summary
    index = (out / "INDEX.md").read_text()
    assert f"| {session_ids[0]} | GET /todos/ | not generated: RuntimeError: boom |" in index
    # Page 2, the next trace of the same pattern and outcome, makes the list's test.
    assert f"| 200 | {session_ids[1]} |" in index
    assert defined_tests(out / "test_todo_list.py") == ["test_get_todo_list_ok"]
