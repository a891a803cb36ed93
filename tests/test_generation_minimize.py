"""``kolo_generate --minimize``: cuts on the plan, the search, the batch runner, the command,
and (slow) the real thing on example scenarios in a throwaway project."""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import json
import re
import subprocess
from collections.abc import Callable, Mapping
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from kolo_django.generation import batch
from kolo_django.generation.batch import BatchProblem, BatchResult
from kolo_django.generation.cuts import Arrangement, Cut
from kolo_django.generation.minimize import (
    MAX_RUNS,
    MinimizeError,
    count_asserts,
    minimize,
    prune_imports,
    renderer,
)
from kolo_django.generation.plan import (
    Assertion,
    LoginStep,
    Plan,
    PlannedRequest,
    RequestBlock,
    ResetSequencesStep,
    SeedBulkStep,
    SeedLinksStep,
    SeedRowStep,
    SeedUpdateStep,
    SetPasswordStep,
)
from kolo_django.generation.values import Code, literal
from kolo_django.management.commands import kolo_generate

# --- a plan to cut ---------------------------------------------------------------------------


def todo_plan(login: bool = False) -> Plan:
    """A detail view's plan: a list, an owner, tags, the todo shown and four others."""

    def todo(n: int) -> dict[str, Code]:
        return {"title": literal(f"Todo {n}"), "todo_list": Code("todo_list_1")}

    request = PlannedRequest("get", literal("/todos/1/"), {})
    request.set_headers(
        {
            "X-Requested-With": literal("XMLHttpRequest"),
            "Accept-Language": literal("de"),
            "Authorization": Code('"Basic " + base64.b64encode(b"bob:pw").decode()'),
        }
    )
    seeds: list[Any] = [
        SeedRowStep(
            "todo_list_1",
            "TodoList",
            {"id": literal(1), "name": literal("Home"), "color": literal("#ffffff")},
        ),
        SeedRowStep("user_1", "User", {"id": literal(1), "username": literal("user_1")}),
        SeedRowStep("tag_1", "Tag", {"name": literal("Urgent"), "slug": literal("urgent")}),
        SeedRowStep("tag_2", "Tag", {"name": literal("Ideas"), "slug": literal("ideas")}, False),
        SeedRowStep(
            "todo_1",
            "Todo",
            {
                "id": literal(1),
                "title": literal("Fix"),
                "notes": literal("Some notes"),
                "owner": Code("user_1"),
                "todo_list": Code("todo_list_1"),
            },
        ),
        SeedBulkStep("Todo", [todo(n) for n in range(2, 6)]),
        SeedUpdateStep("Todo", Code("todo_1.pk"), {"created_at": literal("2025-01-01")}),
        SeedLinksStep("todo_1", "tags", [Code("tag_1")]),
        SetPasswordStep("user_1", "kolo-test-password"),
        ResetSequencesStep(["Todo", "TodoList", "User"]),
    ]
    return Plan(
        "TodoDetailTests",
        "test_get_todo_detail_ok",
        "Replays GET /todos/1/ -> 200.",
        imports={
            "from todos.models import Tag",
            "from todos.models import Todo",
            "from todos.models import TodoList",
            "from django.contrib.auth.models import User",
            "import base64",
            "from django.core.management.color import no_style",
            "from django.db import connections",
        },
        seeds=seeds,
        blocks=[
            RequestBlock(
                0,
                "GET /todos/1/",
                request,
                pre_steps=[LoginStep("user_1")] if login else [],
                assertions=[
                    Assertion("equal", Code("response.status_code"), literal(200)),
                    Assertion("equal", Code('response.context["todo"]'), Code("todo_1")),
                ],
            )
        ],
        needs_reset_helper=True,
    )


def cut_rows(cuts: list[Cut]) -> dict[str, Cut]:
    return {c.rows[0]: c for c in cuts if c.kind == "rows"}


def test_row_cuts_follow_references() -> None:
    arrangement = Arrangement(todo_plan())
    rows = cut_rows(arrangement.candidates([], set()))
    # The shown todo is asserted on, and the list is needed by it: neither can go.
    assert "todo_1" not in rows and "todo_list_1" not in rows
    # The owner can go: the todo's nullable owner is left at its default with it.
    assert rows["user_1"].rows == ("user_1",)
    assert rows["user_1"].resets == (("todo_1", "owner"),)
    assert "todo_1.owner left at the default" in rows["user_1"].label
    # A linked tag goes with its link; unnamed bulk rows go one by one.
    assert {"tag_1", "tag_2", "Todo#1", "Todo#4"} <= set(rows)


def test_a_logged_in_user_is_never_cut() -> None:
    rows = cut_rows(Arrangement(todo_plan(login=True)).candidates([], set()))
    assert "user_1" not in rows


def test_a_row_goes_with_the_rows_that_require_it() -> None:
    plan = todo_plan()
    plan.blocks[0].assertions.pop()  # nothing asserts on todo_1 now
    rows = cut_rows(Arrangement(plan).candidates([], set()))
    cut = rows["todo_list_1"]
    assert set(cut.rows) == {"todo_list_1", "todo_1", "Todo#1", "Todo#2", "Todo#3", "Todo#4"}
    assert "and 5 rows that need it" in cut.label


def test_field_cuts_only_where_a_default_applies() -> None:
    cuts = Arrangement(todo_plan()).candidates([], set())
    fields = {
        (c.rows[0] if len(c.rows) == 1 else c.rows, c.field) for c in cuts if c.kind == "fields"
    }
    assert ("todo_list_1", "color") in fields  # has a default
    assert ("todo_1", "notes") in fields  # blank text
    assert ("todo_1", "owner") in fields  # a nullable foreign key
    assert ("todo_1", "created_at") in fields  # an auto_now value set afterwards
    # Every title together: one group for the five todos.
    assert (("todo_1", "Todo#1", "Todo#2", "Todo#3", "Todo#4"), "title") in fields
    names = {field for _, field in fields}
    assert "id" not in names  # primary keys
    assert "name" not in names and "username" not in names  # unique, no default
    assert "todo_list" not in names  # a required foreign key


def test_headers_the_client_or_auth_sets_are_never_cut() -> None:
    cuts = Arrangement(todo_plan()).candidates([], set())
    assert {c.target for c in cuts if c.kind == "headers"} == {
        "X-Requested-With",
        "Accept-Language",
    }


def test_apply_leaves_the_original_plan_alone() -> None:
    plan = todo_plan()
    arrangement = Arrangement(plan)
    rows = cut_rows(arrangement.candidates([], set()))
    headers = [c for c in arrangement.candidates([], set()) if c.kind == "headers"]
    reduced = arrangement.apply([rows["user_1"], rows["tag_1"], *headers])

    kinds = [s.kind for s in reduced.seeds]
    assert "set_password" not in kinds  # it was for user_1
    assert "seed_links" not in kinds  # its only target was tag_1
    todo_1 = next(s for s in reduced.seeds if getattr(s, "var", "") == "todo_1")
    assert "owner" not in todo_1.fields
    reset = next(s for s in reduced.seeds if isinstance(s, ResetSequencesStep))
    assert reset.models == ["Todo", "TodoList"]  # no User row left
    request = reduced.blocks[0].request
    assert list(request.headers) == ["Authorization"]
    assert (
        request.kwargs["headers"].text
        == "{'Authorization': " + plan.blocks[0].request.headers["Authorization"].text + "}"
    )
    # The original is untouched.
    assert len(plan.seeds) == 10 and "owner" in plan.seeds[4].fields
    assert len(plan.blocks[0].request.headers) == 3


def test_apply_drops_assignments_nothing_uses_any_more() -> None:
    arrangement = Arrangement(todo_plan())
    links = next(c for c in arrangement.candidates([], set()) if c.kind == "links")
    reduced = arrangement.apply([links])
    tag_1 = next(s for s in reduced.seeds if getattr(s, "var", "") == "tag_1")
    assert tag_1.assign is False


def test_counts() -> None:
    arrangement = Arrangement(todo_plan())
    counts = arrangement.counts(todo_plan())
    assert (counts.rows, counts.links, counts.headers, counts.asserts) == (9, 1, 3, 2)
    # Fields: every keyword but the primary keys, plus the update's.
    assert counts.fields == 2 + 1 + 2 + 2 + 4 + 4 * 2 + 1


def test_prune_imports_keeps_what_the_source_uses() -> None:
    plan = Plan(
        "T",
        "t",
        "",
        imports={
            "from todos.models import Tag, Todo as TodosTodo",
            "from django.contrib.auth.models import User",
            "import os.path",
            "import json as j",
            "import re",
        },
    )
    source = "TodosTodo.objects.all()\nos.getcwd()\nj.dumps({})\n"
    assert prune_imports(plan, source).imports == {
        "from todos.models import Tag, Todo as TodosTodo",
        "import os.path",
        "import json as j",
    }


# --- the search, with a runner that judges sources by rules --------------------------------


class RuleRunner:
    """Passes a variant when it keeps what the rules say the view needs, and when every
    seed variable it uses is still assigned (what a NameError would say)."""

    def __init__(self, *rules: Callable[[str], bool], alone_fails: bool = False) -> None:
        self.rules = rules
        self.alone_fails = alone_fails
        self.calls: list[dict[str, str]] = []

    def run(self, sources: Mapping[str, str]) -> BatchResult:
        self.calls.append(dict(sources))
        passed = {name: self.passes(source) for name, source in sources.items()}
        if self.alone_fails and len(self.calls) > 1 and len(sources) == 1:
            passed = dict.fromkeys(sources, False)
        return BatchResult(passed, "runner output\nAssertionError: 1 != 2", ["fake"], 0.01)

    def passes(self, source: str) -> bool:
        tree = ast.parse(source)
        assigned = {
            n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
        }
        used = {
            n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)
        }
        seed_vars = {n for n in used if re.fullmatch(r"(todo|tag|user|todo_list)_\d+", n)}
        return seed_vars <= assigned and all(rule(source) for rule in self.rules)


def todo_rows(source: str) -> int:
    return source.count("Todo(") + source.count("Todo.objects.create(")


def render_unittest() -> Callable[[Plan, bool], str]:
    return renderer("unittest", formatter="none")


NEEDS = (
    lambda s: "X-Requested-With" in s,  # the view reads it
    lambda s: todo_rows(s) >= 3,  # the view counts the todos
)


@pytest.mark.django_db
def test_search_keeps_what_the_view_needs_and_cuts_the_rest() -> None:
    runner = RuleRunner(*NEEDS)
    plan = todo_plan()
    result = minimize(plan, render=render_unittest(), runner=runner)
    report = result.report
    source = result.source
    assert runner.passes(source)
    assert "X-Requested-With" in source and "Accept-Language" not in source
    assert todo_rows(source) == 3  # two of the four extra todos could go, not all four
    assert "User.objects.create(" not in source and "from django.contrib.auth" not in source
    assert "Tag.objects.create(" not in source
    assert (report.before.rows, report.after.rows) == (9, 4)
    assert report.after.headers == 2 and report.after.asserts == report.before.asserts == 2
    assert count_asserts(source) == count_asserts(render_unittest()(plan, True))
    # The last run was the final source, exactly, on its own.
    assert runner.calls[-1] == {"v000": source}
    assert report.runs == len(runner.calls) <= MAX_RUNS
    assert any("removed header Accept-Language" in line for line in report.lines())
    assert report.summary().startswith("minimize: seeded rows 9 → 4, fields ")
    assert "headers 3 → 2; 2 asserts kept; " in report.summary()


@pytest.mark.django_db
def test_search_stops_at_the_run_budget() -> None:
    runner = RuleRunner(*NEEDS)
    result = minimize(todo_plan(), render=render_unittest(), runner=runner, max_runs=3)
    assert len(runner.calls) <= 3
    assert runner.passes(result.source)


@pytest.mark.django_db
def test_a_test_that_fails_as_generated_is_not_minimized() -> None:
    runner = RuleRunner(lambda s: False)
    with pytest.raises(MinimizeError) as info:
        minimize(todo_plan(), render=render_unittest(), runner=runner)
    assert str(info.value) == "the generated test fails before minimizing (output above)"
    assert info.value.output.endswith("AssertionError: 1 != 2")
    assert len(runner.calls) == 2 and len(runner.calls[1]) == 1  # then alone, for its output


@pytest.mark.django_db
def test_a_reduced_test_that_fails_alone_is_not_written() -> None:
    runner = RuleRunner(*NEEDS, alone_fails=True)
    plan = todo_plan()
    result = minimize(plan, render=render_unittest(), runner=runner)
    assert result.source == render_unittest()(plan, True)
    assert result.report.removed == [] and result.report.after == result.report.before
    assert "failed when run alone" in result.report.unminimized_reason


@pytest.mark.django_db
def test_a_lost_assert_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cuts never touch asserts; were one lost anyway, nothing would be written."""
    apply = Arrangement.apply

    def lossy(self: Arrangement, cuts: Any) -> Plan:
        plan = apply(self, cuts)
        if cuts:
            block = plan.blocks[0]
            plan.blocks = [dataclasses.replace(block, assertions=block.assertions[:1])]
        return plan

    monkeypatch.setattr(Arrangement, "apply", lossy)
    with pytest.raises(MinimizeError) as info:
        minimize(todo_plan(), render=render_unittest(), runner=RuleRunner())
    assert str(info.value) == "minimize: the reduced test lost an assert; nothing was written"


@pytest.mark.django_db
def test_a_runner_that_cannot_run_is_one_error() -> None:
    class Broken:
        def run(self, sources: Mapping[str, str]) -> BatchResult:
            raise BatchProblem("the test runner did not finish within 5 s", "partial output")

    with pytest.raises(MinimizeError) as info:
        minimize(todo_plan(), render=render_unittest(), runner=Broken())
    assert str(info.value) == "minimize: the test runner did not finish within 5 s"


# --- reading the runners' results --------------------------------------------------------------


def test_results_json_names_each_variant() -> None:
    text = json.dumps(
        {
            "ran": [
                "kolo_minimize_ab.test_v000.TodoTests.test_get",
                "kolo_minimize_ab.test_v001.TodoTests.test_get",
                "unittest.loader._FailedTest.kolo_minimize_ab.test_v002",
                "kolo_minimize_ab.test_v003.TodoTests.test_get",
            ],
            "failed": [
                "kolo_minimize_ab.test_v001.TodoTests.test_get test_get (...)",
                "unittest.loader._FailedTest.kolo_minimize_ab.test_v002 ...",
                "setUpClass (kolo_minimize_ab.test_v003.TodoTests) setUpClass (...)",
            ],
        }
    )
    assert batch.parse_results_json(text) == (
        {"v000", "v001", "v002", "v003"},
        {"v001", "v002", "v003"},
    )


def test_junit_names_each_variant() -> None:
    text = """<testsuites><testsuite>
      <testcase classname="kolo_minimize_ab.test_v000" name="test_get"/>
      <testcase classname="kolo_minimize_ab.test_v001" name="test_get"><failure message="x"/></testcase>
      <testcase classname="" name="kolo_minimize_ab.test_v002"><error message="collection failure"/></testcase>
      <testcase classname="kolo_minimize_ab.test_v003" name="test_get"><skipped message="s"/></testcase>
    </testsuite></testsuites>"""
    assert batch.parse_junit(text) == ({"v000", "v001", "v002", "v003"}, {"v001", "v002", "v003"})


def test_project_runner_names_every_module_and_cleans_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, Any] = {}

    def fake_run(command: list[str], **kwargs: Any) -> Any:
        package = next(tmp_path.glob("kolo_minimize_*"))
        seen["command"], seen["files"] = command, sorted(p.name for p in package.iterdir())
        Path(kwargs["env"]["KOLO_BATCH_RESULTS"]).write_text(
            json.dumps(
                {
                    "ran": [
                        f"{package.name}.test_v000.T.test_a",
                        f"{package.name}.test_v001.T.test_a",
                    ],
                    "failed": [f"{package.name}.test_v001.T.test_a x"],
                }
            )
        )
        return subprocess.CompletedProcess(command, 1, "out", "err")

    monkeypatch.setattr(batch.subprocess, "run", fake_run)
    runner = batch.ProjectRunner("unittest", root=tmp_path, env={"PATH": "/usr/bin"})
    result = runner.run({"v000": "# a", "v001": "# b"})
    assert result.passed == {"v000": True, "v001": False}
    command = seen["command"]
    assert command[1:5] == [str(tmp_path / "manage.py"), "test", "--noinput", "--testrunner"]
    assert command[5].endswith(".kolo_results_runner.Runner")
    assert [c.rsplit(".", 1)[1] for c in command[6:]] == ["test_v000", "test_v001"]
    assert seen["files"] == [
        "__init__.py",
        "kolo_results_runner.py",
        "test_v000.py",
        "test_v001.py",
    ]
    assert not list(tmp_path.glob("kolo_minimize_*"))  # removed afterwards


def test_project_runner_reports_a_runner_that_gave_no_results(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_results(command: list[str], **kwargs: Any) -> Any:
        return subprocess.CompletedProcess(command, 2, "", "ImproperlyConfigured: boom")

    monkeypatch.setattr(batch.subprocess, "run", no_results)
    with pytest.raises(BatchProblem) as info:
        batch.ProjectRunner("pytest", root=tmp_path).run({"v000": "# a"})
    assert str(info.value) == "the test runner exited with 2 and reported no results"
    assert info.value.output == "ImproperlyConfigured: boom"

    def too_slow(command: list[str], **kwargs: Any) -> Any:
        raise subprocess.TimeoutExpired(command, kwargs["timeout"], b"partial")

    monkeypatch.setattr(batch.subprocess, "run", too_slow)
    with pytest.raises(BatchProblem) as info:
        batch.ProjectRunner("pytest", root=tmp_path, timeout=5).run({"v000": "# a"})
    assert str(info.value) == "the test runner did not finish within 5 s"
    assert info.value.output == "partial"


def test_variant_names_sort_as_numbers() -> None:
    assert batch.variant_names(3) == ["v000", "v001", "v002"]
    assert batch.variant_names(1200)[-1] == "v1199"


# --- the command ---------------------------------------------------------------------------------


@pytest.fixture
def detail_trace(client: Any, todo_pk: int, traces: Any) -> str:
    response = client.get(
        f"/todos/{todo_pk}/", HTTP_X_REQUESTED_WITH="XMLHttpRequest", HTTP_ACCEPT_LANGUAGE="de"
    )
    assert response.status_code == 200
    return traces.get().id


def fake_runner(monkeypatch: pytest.MonkeyPatch, runner: RuleRunner) -> None:
    monkeypatch.setattr(kolo_generate, "ProjectRunner", lambda style: runner)


def test_command_writes_the_minimized_test_and_reports(
    detail_trace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = RuleRunner()
    fake_runner(monkeypatch, runner)
    out, err = StringIO(), StringIO()
    call_command(
        "kolo_generate", detail_trace, "--minimize", "--style", "unittest", stdout=out, stderr=err
    )
    source = out.getvalue()
    assert source == runner.calls[-1]["v000"]  # verified exactly as written
    assert "Accept-Language" not in source and "X-Requested-With" not in source
    lines = err.getvalue().splitlines()
    assert "minimize: removed header X-Requested-With" in lines
    assert lines[-1].startswith("minimize: seeded rows ")
    assert re.search(r"headers 2 → 0; \d+ asserts kept; \d+ runs, [\d.]+ s$", lines[-1])
    original = StringIO()
    call_command("kolo_generate", detail_trace, "--style", "unittest", stdout=original)
    assert count_asserts(source) == count_asserts(original.getvalue())
    assert len(source) < len(original.getvalue())


def test_command_respects_verbosity(detail_trace: str, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_runner(monkeypatch, RuleRunner())
    err = StringIO()
    call_command(
        "kolo_generate", detail_trace, "--minimize", verbosity=0, stdout=StringIO(), stderr=err
    )
    assert err.getvalue() == ""
    err = StringIO()
    call_command(
        "kolo_generate", detail_trace, "--minimize", verbosity=2, stdout=StringIO(), stderr=err
    )
    assert re.search(
        r"^minimize: run 1: the test as generated passed; \d+ of \d+ cuts passed alone \([\d.]+ s\)$",
        err.getvalue(),
        re.M,
    )


def test_command_fails_in_one_line_when_the_test_fails_as_generated(
    detail_trace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_runner(monkeypatch, RuleRunner(lambda s: False))
    err = StringIO()
    with pytest.raises(CommandError) as info:
        call_command("kolo_generate", detail_trace, "--minimize", stdout=StringIO(), stderr=err)
    assert str(info.value) == "the generated test fails before minimizing (output above)"
    assert "AssertionError: 1 != 2" in err.getvalue()


def test_command_checks_the_output_path_before_minimizing(
    detail_trace: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    runner = RuleRunner()
    fake_runner(monkeypatch, runner)
    existing = tmp_path / "test_detail.py"
    existing.write_text("# mine\n")
    with pytest.raises(CommandError) as info:
        call_command(
            "kolo_generate", detail_trace, "--minimize", "-o", str(existing), stderr=StringIO()
        )
    assert str(info.value) == f"{existing} exists; pass --force to overwrite it"
    assert runner.calls == []
    call_command(
        "kolo_generate", detail_trace, "--minimize", "-o", str(tmp_path), stderr=StringIO()
    )
    written = next(p for p in tmp_path.glob("test_*.py") if p != existing)
    assert written.read_text() == runner.calls[-1]["v000"]


def test_command_refuses_to_minimize_a_suite(traces: Any) -> None:
    with pytest.raises(CommandError) as info:
        call_command("kolo_generate", "--last", "3", "--minimize", stderr=StringIO())
    assert str(info.value) == "--minimize works on one test, not a suite"


def test_command_help_mentions_minimize() -> None:
    parser = kolo_generate.Command().create_parser("manage.py", "kolo_generate")
    assert "--minimize" in parser.format_help()


# --- the real thing: example scenarios in a throwaway project, with its runners ---------------

SLOW_SCENARIOS = {"unittest": ["detail_headers"], "pytest": ["digital_product"]}


def detail_headers(s: Any) -> None:
    """The detail page, asked for with headers the view never reads."""
    from .scenarios.scenarios import todo_where

    s.get(
        f"/todos/{todo_where(tags__isnull=False).pk}/",
        HTTP_X_REQUESTED_WITH="XMLHttpRequest",
        HTTP_ACCEPT_LANGUAGE="de",
    )


def assert_statements(source: str) -> list[str]:
    """Every assert of a test, as code: ``assert`` statements and ``assert…()`` calls."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Assert):
            found.append(ast.unparse(node))
        elif isinstance(node, ast.Call):
            name = getattr(node.func, "attr", getattr(node.func, "id", ""))
            if name.startswith("assert"):
                found.append(ast.unparse(node))
    return found


def seeded_rows(source: str) -> int:
    """Rows a test creates: create() calls and the Model(...) rows of bulk_create()."""
    rows = 0
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        if node.func.attr == "create":
            rows += 1
        elif node.func.attr == "bulk_create" and node.args and isinstance(node.args[0], ast.List):
            rows += len(node.args[0].elts)
    return rows


@pytest.mark.slow
@pytest.mark.xdist_group("minimize")
@pytest.mark.django_db
def test_minimize_on_example_scenarios(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Minimized tests pass on their own runner, keep every assert, and seed fewer rows."""
    from kolo_django.generation.api import generate
    from kolo_django.generation.batch import ProjectRunner

    from .helpers_recording import stub_api
    from .scenarios import project as proj
    from .scenarios.recording import record_documents

    names = [n for style_names in SLOW_SCENARIOS.values() for n in style_names]
    with stub_api() as api_url:
        root = proj.build_project(tmp_path / "project", api_url)
        documents = record_documents(
            names, api_url, tmp_path / "media", extra={"detail_headers": detail_headers}
        )
        originals: dict[str, str] = {}
        minimized: dict[str, Any] = {}
        for style, style_names in SLOW_SCENARIOS.items():
            runner = ProjectRunner(style, root=root, env=proj.runner_env(tmp_path, f"min_{style}"))
            for name in style_names:
                with contextlib.chdir(root):
                    originals[name], context = generate(documents[name], style=style)
                    minimized[name] = minimize(
                        context["plan"], render=renderer(style), runner=runner
                    )
                source = minimized[name].source
                if style == "unittest":
                    (root / proj.UNITTEST_PACKAGE / f"{proj.unittest_module(name)}.py").write_text(
                        source
                    )
                else:
                    (root / proj.PYTEST_PACKAGE / f"{proj.pytest_module(name)}.py").write_text(
                        source
                    )
        # An independent check: the project's runners, once each, on the written files.
        again = {
            "unittest": proj.run_unittest(root, "again_u"),
            "pytest": proj.run_pytest(root, "again_p"),
        }

    for style, style_names in SLOW_SCENARIOS.items():
        for name in style_names:
            result, original = minimized[name], originals[name]
            module = proj.unittest_module(name) if style == "unittest" else proj.pytest_module(name)
            outcome = again[style].outcome(module)
            assert outcome.passed, f"{name}: {outcome.status}\n{outcome.detail}\n{result.source}"
            assert not result.report.unminimized_reason, name
            assert assert_statements(result.source) == assert_statements(original), name
            assert seeded_rows(result.source) < seeded_rows(original), name
            assert seeded_rows(result.source) == result.report.after.rows, name
            assert seeded_rows(original) == result.report.before.rows, name
            assert result.report.runs <= MAX_RUNS, name
    headers = minimized["detail_headers"].source
    assert "X-Requested-With" in originals["detail_headers"]
    assert "X-Requested-With" not in headers and "Accept-Language" not in headers
