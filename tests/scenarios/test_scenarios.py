"""Acceptance test of trace inversion: generated tests pass, catch mutations, stay clean.

Every test here reads the results of the session fixture ``scenario_run`` (conftest.py),
which runs each runner once for all scenarios. All tests share one xdist group, so run
with ``pytest -n 2 --dist loadgroup`` (or without xdist).
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from . import project as proj
from .harness import HOOKED, HOOKED_SUFFIX, STYLES, ScenarioRun
from .mutations import CONTROLS, MUTATIONS, cases
from .scenarios import SCENARIOS

# django_db: pytest-django only sets up the test databases that marked tests need, and
# the session fixture records into the default one.
pytestmark = [pytest.mark.xdist_group("scenarios"), pytest.mark.django_db]


def _generated(run: ScenarioRun, scenario: str) -> dict[str, str]:
    generated = run.generated[scenario]
    if generated.problem:
        pytest.fail(generated.problem, pytrace=False)
    return generated.sources


def _excerpt(source: str, head: int = 30, tail: int = 150) -> str:
    """The generated code with line numbers; long seed sections are cut in the middle."""
    lines = [f"{n:4} {line}" for n, line in enumerate(source.splitlines(), 1)]
    if len(lines) > head + tail + 10:
        lines[head:-tail] = [f"     ... ({len(lines) - head - tail} lines left out)"]
    return "\n".join(lines)


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_generated_test_passes(scenario_run: ScenarioRun, scenario: str, style: str) -> None:
    source = _generated(scenario_run, scenario)[style]
    outcome = scenario_run.outcome(style, scenario)
    if not outcome.passed:
        command = " ".join(scenario_run.results[style].command[1:])
        package = proj.UNITTEST_PACKAGE if style == "unittest" else proj.PYTEST_PACKAGE
        module = (
            proj.unittest_module(scenario) if style == "unittest" else proj.pytest_module(scenario)
        )
        pytest.fail(
            f"generated {style} test of {scenario!r} {outcome.status} under `{command}` "
            f"in {scenario_run.project}:\n{outcome.detail}\n\n"
            f"--- generated code ({package}/{module}.py) ---\n{_excerpt(source)}",
            pytrace=False,
        )


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("scenario", HOOKED)
def test_generated_test_with_hooks_passes(
    scenario_run: ScenarioRun, scenario: str, style: str
) -> None:
    """Factories, a field parser, processors and a team template change the code,
    and the test still passes."""
    name = scenario + HOOKED_SUFFIX
    source = _generated(scenario_run, name)[style]
    assert '"""Recorded by kolo_django and reviewed by the todos team.' in source
    assert "Factory.create(" in source and "from todos.factories import" in source
    if style == "unittest":
        assert "class Recorded" in source
    outcome = scenario_run.outcome(style, name)
    assert outcome.passed, f"{outcome.status}:\n{outcome.detail}\n\n{_excerpt(source)}"


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize(("kind", "scenario"), cases())
def test_mutation_is_caught(
    scenario_run: ScenarioRun, kind: str, scenario: str, style: str
) -> None:
    mutation = MUTATIONS[kind]
    if kind in scenario_run.mutant_problems:
        pytest.fail(scenario_run.mutant_problems[kind], pytrace=False)
    _generated(scenario_run, scenario)
    if not scenario_run.outcome(style, scenario).passed:
        pytest.skip("inconclusive: the generated test already fails on the unmutated project")
    controls = [c for c in CONTROLS if scenario_run.outcome(style, c).passed]
    broken = [c for c in controls if not scenario_run.mutant_outcome(kind, style, c).passed]
    assert controls and not broken, (
        f"the {kind} mutant project is unsound: controls {broken or CONTROLS} fail there"
    )
    outcome = scenario_run.mutant_outcome(kind, style, scenario)
    assert outcome.status in ("failed", "error"), (
        f"the generated {style} test of {scenario!r} still {outcome.status} after the "
        f"{kind} mutation ({mutation.description}):\n"
        + "\n".join(f"  todos/{e[0]} {e[1]}(): {e[2]!r} -> {e[3]!r}" for e in mutation.edits)
    )


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_no_secrets(scenario_run: ScenarioRun, scenario: str) -> None:
    sources = _generated(scenario_run, scenario)
    leaks = [
        (style, secret)
        for style, source in sources.items()
        for secret in sorted(scenario_run.secrets)
        if secret in source
    ]
    assert not leaks, f"secrets in the generated code of {scenario!r}: {leaks}"


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_generated_code_compiles(scenario_run: ScenarioRun, scenario: str) -> None:
    for style, source in _generated(scenario_run, scenario).items():
        tree = ast.parse(compile(source, f"{scenario}_{style}.py", "exec", ast.PyCF_ONLY_AST))
        imported = {
            name.split(".")[0]
            for node in ast.walk(tree)
            for name in (
                [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else []
            )
        }
        assert "kolo_django" not in imported, f"the {style} test imports kolo_django"


def test_generated_code_is_lint_clean(scenario_run: ScenarioRun) -> None:
    ruff = Path(sys.executable).with_name("ruff")
    if not ruff.exists():
        pytest.skip("ruff is not installed in the venv")
    folders = [proj.UNITTEST_PACKAGE, proj.PYTEST_PACKAGE]
    folders += [f for f in proj.SUITE_PACKAGES.values() if (scenario_run.project / f).is_dir()]
    result = subprocess.run(
        [
            str(ruff),
            "check",
            "--isolated",
            "--no-cache",
            "--select",
            "F401,F841,E711,E712,I",
            *folders,
        ],
        cwd=scenario_run.project,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_recorder_is_not_importable_in_throwaway_project(scenario_run: ScenarioRun) -> None:
    result = subprocess.run(
        [sys.executable, "-c", "import kolo_django"],
        cwd=scenario_run.project,
        env=proj.runner_env(scenario_run.base, "import_check"),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0 and "No module named 'kolo_django'" in result.stderr


@pytest.mark.parametrize("style", STYLES)
def test_runner_reported_every_generated_test(scenario_run: ScenarioRun, style: str) -> None:
    """Guards the result parsing: one result per generated module, none unaccounted for."""
    module = proj.unittest_module if style == "unittest" else proj.pytest_module
    expected = {module(name) for name, g in scenario_run.generated.items() if not g.problem}
    result = scenario_run.results[style]
    assert set(result.outcomes) == expected, result.output[-4000:]


# --- flows ------------------------------------------------------------------------------


@pytest.mark.parametrize("style", STYLES)
def test_flow_creates_the_row_it_edits(scenario_run: ScenarioRun, style: str) -> None:
    """Create, then edit what was created: the test's own first request creates the row,
    which is looked up (never seeded) and its id carried into the second request."""
    source = _generated(scenario_run, "flow")[style]
    assert scenario_run.outcome(style, "flow").passed
    assert "Todo.objects.create(" not in source and "Todo(" not in source, _excerpt(source)
    create = source.find('"/todos/new/"')
    lookup = source.find("todo = Todo.objects.get(")
    edit = source.find('reverse("todo-update", kwargs={"pk": todo.pk})')
    assert 0 < create < lookup < edit, _excerpt(source)


@pytest.mark.parametrize("style", STYLES)
def test_generic_object_id_refers_to_the_seeded_row(scenario_run: ScenarioRun, style: str) -> None:
    """A review's object_id is the product's id in the test's database, not the
    recorded one (on PostgreSQL the two differ with the tests' order)."""
    source = _generated(scenario_run, "review_product")[style]
    assert scenario_run.outcome(style, "review_product").passed
    assert re.search(r"object_id=product(_\d+)?\.pk,", source), _excerpt(source)
    assert re.search(r"object_id=\d", source) is None, _excerpt(source)


# --- a suite from a browsing session ------------------------------------------------------


def _session_suite(run: ScenarioRun) -> Any:
    suite = run.session_suite
    if suite.problem:
        pytest.fail(suite.problem, pytrace=False)
    return suite


def _suite_tests(directory: Path) -> list[str]:
    names = []
    for path in sorted(directory.glob("test_*.py")):
        tree = ast.parse(path.read_text())
        names += [
            f"{path.stem}.{node.name}"
            for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test")
        ]
    return names


@pytest.mark.parametrize("style", STYLES)
def test_session_suite_passes(scenario_run: ScenarioRun, style: str) -> None:
    suite = _session_suite(scenario_run)
    directory = scenario_run.project / proj.SUITE_PACKAGES[style]
    tests = _suite_tests(directory)
    result = suite.results[style]
    assert result.passed and not result.failed, result.output[-6000:]
    ran = re.search(r"Ran (\d+) tests?" if style == "unittest" else r"(\d+) passed", result.output)
    assert ran and int(ran.group(1)) == len(tests), result.output[-3000:]
    # Deduplicated: fewer tests than requests, one module per view.
    assert len(suite.trace_ids) >= 20
    assert 10 <= len(tests) < len(suite.trace_ids)
    modules = {name.split(".")[0] for name in tests}
    assert {"test_todo_list", "test_todo_detail", "test_todo_create", "test_todo_update"} <= modules
    summary = suite.summaries[style]
    assert f"wrote {len(tests)} tests in {len(modules)} modules" in summary, summary
    print(
        f"{style}: {len(suite.trace_ids)} requests -> {len(tests)} tests in {len(modules)} modules"
    )


def test_session_suite_index(scenario_run: ScenarioRun) -> None:
    suite = _session_suite(scenario_run)
    index = (scenario_run.project / proj.SUITE_PACKAGES["unittest"] / "INDEX.md").read_text()
    covered, _, skipped = index.partition("## Skipped")
    # Every trace is accounted for: kept for a test, or skipped with its reason.
    for trace_id in suite.trace_ids:
        assert trace_id in index
    duplicates = re.findall(
        r"^\| (trc_\w+) \| GET /todos/\?page=2 \| same as (trc_\w+)", skipped, re.M
    )
    assert duplicates, skipped
    assert duplicates[0][1] == suite.trace_ids[0]


def test_session_suite_coverage(scenario_run: ScenarioRun) -> None:
    suite = _session_suite(scenario_run)
    totals = suite.results["unittest"].coverage_totals
    assert totals, suite.results["unittest"].coverage_report
    views = totals["per_view_module"]
    report = "\n".join(
        f"{Path(p).parent.name}/{Path(p).name}: {t['percent']}% of {t['statements']}"
        for p, t in sorted(views.items())
    )
    print(f"views: {totals['views']['percent']}%\n{report}")
    assert any(p.endswith("todos/views.py") for p in views)
    assert totals["views"]["percent"] >= 40, report
    assert "TOTAL" in suite.results["unittest"].coverage_report


def test_session_suite_has_no_secrets(scenario_run: ScenarioRun) -> None:
    _session_suite(scenario_run)
    for package in proj.SUITE_PACKAGES.values():
        for path in (scenario_run.project / package).iterdir():
            text = path.read_text()
            leaks = [secret for secret in scenario_run.secrets if secret in text]
            assert not leaks, f"{path.name}: {leaks}"


UNITTEST_SAMPLE = """\
generated.test_broken (unittest.loader._FailedTest.generated.test_broken) ... ERROR
test_post_x_creates (generated.test_api_create.ApiTests.test_post_x_creates)
Replays POST /api/todos/ -> 201 (trc_x). ... todo created: 1
ok
test_get_x_ok (generated.test_list.ListTests.test_get_x_ok)
Replays GET /todos/ -> 200 (trc_y). ... ok
test_get_x_ok (generated.test_list_page2.ListTests.test_get_x_ok)
Replays GET /todos/?page=2 -> 200 (trc_z). ... log line
FAIL

======================================================================
ERROR: generated.test_broken (unittest.loader._FailedTest.generated.test_broken)
----------------------------------------------------------------------
ImportError: Failed to import test module: generated.test_broken

======================================================================
FAIL: test_get_x_ok (generated.test_list_page2.ListTests.test_get_x_ok)
Replays GET /todos/?page=2 -> 200 (trc_z).
----------------------------------------------------------------------
AssertionError: 1 != 2

----------------------------------------------------------------------
Ran 4 tests in 0.1s
"""


def test_parse_unittest_output() -> None:
    outcomes = proj.parse_unittest(UNITTEST_SAMPLE, proj.UNITTEST_PACKAGE)
    assert {name: o.status for name, o in outcomes.items()} == {
        "test_broken": "error",
        "test_api_create": "passed",
        "test_list": "passed",
        "test_list_page2": "failed",
    }
    assert outcomes["test_list_page2"].detail.endswith("AssertionError: 1 != 2")
