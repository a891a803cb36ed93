"""A regression suite from many traces: deduplicated, one module per view.

Traces of the same URL pattern, method and outcome (status class and the
writes it made) make one test. Each view's tests go into one module,
merged from the tests rendered one by one, so users' templates keep working.
"""

from __future__ import annotations

import ast
import json
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..recording.sqltables import written_table
from .api import GenerationError, generate
from .naming import OUTCOMES, class_name, test_name, view_words
from .render import tidy

# Session and auth bookkeeping is written by nearly every request; it does not
# tell two outcomes of a view apart.
IGNORED_WRITE_TABLES = {"django_session"}
IGNORED_WRITE_MODELS = {"sessions.session"}


@dataclass
class SuiteTest:
    trace_id: str
    module: str  # file stem: "test_todo_list"
    class_name: str
    test_name: str
    source: str
    method: str
    path: str
    route: str
    status: int | None
    duplicates: list[str] = field(default_factory=list)


@dataclass
class Skipped:
    trace_id: str
    method: str
    path: str
    reason: str


@dataclass
class Suite:
    style: str
    tests: list[SuiteTest] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    considered: int = 0

    def modules(self) -> dict[str, list[SuiteTest]]:
        grouped: dict[str, list[SuiteTest]] = {}
        for test in self.tests:
            grouped.setdefault(test.module, []).append(test)
        return grouped


def route_of(document: dict[str, Any]) -> str:
    request = document.get("request") or {}
    resolver = request.get("resolver") or {}
    return str(resolver.get("route") or request.get("path") or "")


def writes_of(document: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """What a request changed, as (operation, model or table) pairs."""
    found: set[tuple[str, str]] = set()
    for event in document.get("events") or ():
        kind = event.get("type")
        if kind == "write" and event.get("model") not in IGNORED_WRITE_MODELS:
            found.add((str(event.get("op")), str(event.get("model"))))
    for event in document.get("events") or ():
        # QuerySet.update(), bulk_create() and raw SQL send no signals.
        if event.get("type") != "sql" or event.get("error"):
            continue
        statement = str(event.get("statement") or "")
        if statement not in ("insert", "update", "delete"):
            continue
        table = written_table(str(event.get("sql") or ""))
        if table and table not in IGNORED_WRITE_TABLES:
            found.add((statement, table))
    return tuple(sorted(found))


def dedup_key(document: dict[str, Any]) -> tuple[Any, ...]:
    request = document.get("request") or {}
    status = (document.get("response") or {}).get("status_code")
    status_class = f"{status // 100}xx" if isinstance(status, int) else "none"
    method = str(request.get("method") or "").upper()
    return (method, route_of(document), status_class, writes_of(document))


def module_name(document: dict[str, Any]) -> str:
    words = [w.lower() for w in view_words(document)]
    return ("test_" + "_".join(words))[:64]


def build_suite(
    traces: Iterable[tuple[str, Callable[[], dict[str, Any]]]],
    *,
    style: str,
    template: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> Suite:
    """Generate one test per distinct (route, method, outcome) among ``traces``,
    given as (id, loader) pairs in the order they were recorded."""
    suite = Suite(style=style)
    kept: dict[tuple[Any, ...], SuiteTest] = {}
    used_classes: dict[str, set[str]] = {}
    used_tests: dict[str, set[str]] = {}
    for index, (trace_id, load) in enumerate(traces, 1):
        suite.considered += 1
        if progress is not None:
            progress(index)
        try:
            document = load()
        except Exception as exc:  # a corrupt or vanished trace is reported, not fatal
            suite.skipped.append(Skipped(trace_id, "", "", f"cannot be read: {exc}"))
            continue
        request = document.get("request") or {}
        method = str(request.get("method") or "").upper()
        path = str(request.get("path") or "")
        if request.get("query_string"):
            path += "?" + str(request["query_string"])
        key = dedup_key(document)
        if key in kept:
            kept[key].duplicates.append(trace_id)
            suite.skipped.append(
                Skipped(trace_id, method, path, f"same as {trace_id_of(kept[key])}")
            )
            continue
        module = module_name(document)
        classes = used_classes.setdefault(module, set())
        tests = used_tests.setdefault(module, set())
        cls = _unique(_class_for(document, classes), classes)
        name = _unique(test_name([document]), tests)
        try:
            # Formatted once, as a merged module (render_modules).
            source, _ = generate(
                [document],
                style=style,
                template=template,
                test_class=cls,
                test_name=name,
                formatter="none",
            )
        except GenerationError as exc:
            suite.skipped.append(Skipped(trace_id, method, path, f"not generated: {exc}"))
            continue
        except Exception as exc:  # one trace the generator chokes on must not sink the suite
            reason = f"not generated: {type(exc).__name__}: {exc}"
            suite.skipped.append(Skipped(trace_id, method, path, reason))
            continue
        classes.add(cls)
        tests.add(name)
        test = SuiteTest(
            trace_id=trace_id,
            module=module,
            class_name=cls,
            test_name=name,
            source=source,
            method=method,
            path=path,
            route=route_of(document),
            status=(document.get("response") or {}).get("status_code"),
        )
        kept[key] = test
        suite.tests.append(test)
    return suite


def trace_id_of(test: SuiteTest) -> str:
    return f"{test.trace_id} ({test.module}.{test.test_name})"


def _class_for(document: dict[str, Any], used: set[str]) -> str:
    base = class_name([document])
    if base not in used:
        return base
    request = document.get("request") or {}
    status = (document.get("response") or {}).get("status_code")
    words = [
        str(request.get("method") or "get"),
        *OUTCOMES.get(status, f"status_{status}").split("_"),
    ]
    extra = "".join(w[:1].upper() + w[1:].lower() for w in words)
    return base[: -len("Tests")] + extra + "Tests"


def _unique(name: str, used: set[str]) -> str:
    candidate, n = name, 1
    while candidate in used:
        n += 1
        candidate = f"{name}_{n}" if not name.endswith("Tests") else f"{name[:-5]}{n}Tests"
    return candidate


# --- merging the tests of one view into one module ---------------------------------------


class MergeConflict(Exception):
    """Two tests define the same top-level name differently."""


def merge_sources(sources: list[str], formatter: str | None = None) -> str:
    """One module holding every test of ``sources``: imports united, shared
    helpers kept once, the first module's docstring on top."""
    docstring = ""
    imports: list[str] = []
    blocks: list[str] = []
    defined: dict[str, str] = {}
    for source in sources:
        tree = ast.parse(source)
        lines = source.splitlines()
        body = list(tree.body)
        if (
            body
            and isinstance(body[0], ast.Expr)
            and isinstance(getattr(body[0], "value", None), ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            if not docstring:
                docstring = _segment(lines, body[0])
            body = body[1:]
        for node in body:
            text = _segment(lines, node)
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                if text not in imports:
                    imports.append(text)
                continue
            names = _defined_names(node)
            if any(defined.get(n) == text for n in names):
                continue
            clash = [n for n in names if n in defined]
            if clash:
                raise MergeConflict(f"{clash[0]} is defined twice, differently")
            if not names and text in blocks:
                continue
            for n in names:
                defined[n] = text
            blocks.append(text)
    parts = [p for p in (docstring, "\n".join(imports)) if p]
    code = "\n\n".join(parts) + "\n\n\n" + "\n\n\n".join(blocks) + "\n"
    return tidy(code, formatter)


def _segment(lines: list[str], node: ast.stmt) -> str:
    start = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
    end = node.end_lineno or node.lineno
    return "\n".join(lines[start - 1 : end])


def _defined_names(node: ast.stmt) -> list[str]:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [node.name]
    if isinstance(node, ast.Assign):
        return [t.id for t in node.targets if isinstance(t, ast.Name)]
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return [node.target.id]
    return []


def render_modules(suite: Suite, formatter: str | None = None) -> dict[str, str]:
    """File stem → source. A test whose helpers clash with its view's module
    goes into a module of its own (``test_view_2``)."""
    files: dict[str, list[SuiteTest]] = {}
    for module, tests in suite.modules().items():
        buckets: list[list[SuiteTest]] = []
        for test in tests:
            for bucket in buckets:
                try:
                    merge_sources([t.source for t in bucket] + [test.source], "none")
                except MergeConflict:
                    continue
                bucket.append(test)
                break
            else:
                buckets.append([test])
        for n, bucket in enumerate(buckets, 1):
            stem = module if n == 1 else f"{module}_{n}"
            for test in bucket:
                test.module = stem
            files[stem] = bucket
    return {
        stem: merge_sources([t.source for t in bucket], formatter) for stem, bucket in files.items()
    }


# --- the index --------------------------------------------------------------------------


def index_text(suite: Suite, *, title: str, coverage: str = "") -> str:
    lines = [
        f"# {title}",
        "",
        f"Generated by kolo_django ({suite.style} style) from {suite.considered} traces: "
        f"{len(suite.tests)} tests in {len(suite.modules())} modules, "
        f"{len(suite.skipped)} traces skipped.",
        "",
        "## Covered",
        "",
        "| module | test | request | status | traces |",
        "| --- | --- | --- | --- | --- |",
    ]
    for test in sorted(suite.tests, key=lambda t: (t.module, t.test_name)):
        traces = ", ".join([test.trace_id, *test.duplicates])
        lines.append(
            f"| {test.module}.py | {_cell(test.test_name)} | {test.method} {_cell('/' + test.route.lstrip('/') if test.route else test.path)} "
            f"| {test.status} | {traces} |"
        )
    lines += ["", "## Skipped", ""]
    if suite.skipped:
        lines += ["| trace | request | reason |", "| --- | --- | --- |"]
        for skipped in suite.skipped:
            lines.append(
                f"| {skipped.trace_id} | {skipped.method} {_cell(skipped.path)} "
                f"| {_cell(skipped.reason)} |"
            )
    else:
        lines.append("Nothing was skipped.")
    if coverage:
        lines += ["", "## Coverage", "", "```", coverage.rstrip(), "```"]
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return re.sub(r"\s+", " ", text).replace("|", "\\|")


# --- running the suite --------------------------------------------------------------------


@dataclass
class SuiteRun:
    passed: bool
    output: str
    # (module stem, test name) → error line; test name "" = the whole module
    failed: dict[tuple[str, str], str]
    coverage_report: str = ""
    coverage_totals: dict[str, Any] = field(default_factory=dict)


_UNITTEST_FAILURE = re.compile(r"^(?:FAIL|ERROR): ([\w.]+) \(([\w.]+)\)\n", re.M)


def failures_unittest(output: str, stems: set[str]) -> dict[tuple[str, str], str]:
    """Failed tests in ``manage.py test -v 2`` output, each with its error line."""
    failed: dict[tuple[str, str], str] = {}
    for match in _UNITTEST_FAILURE.finditer(output):
        name, test_id = match.groups()
        stem = next((p for p in test_id.split(".") if p in stems), None)
        if stem is None:
            continue
        if "." in name or name == stem:  # the module did not import
            name = stem
        section = re.split(
            r"^(?:={50,}$|Ran \d+ tests?)", output[match.end() :], maxsplit=1, flags=re.M
        )
        lines = [
            line
            for line in section[0].splitlines()
            if re.match(r"^\w[\w.]*(Error|Exception|Failure)\b", line)
        ]
        failed[(stem, "" if name == stem else name)] = lines[-1] if lines else "failed"
    return failed


def failures_junit(xml_text: str, stems: set[str]) -> dict[tuple[str, str], str]:
    import xml.etree.ElementTree as ET

    failed: dict[tuple[str, str], str] = {}
    for case in ET.fromstring(xml_text).iter("testcase"):
        problem = case.find("failure")
        if problem is None:
            problem = case.find("error")
        if problem is None:
            continue
        words = re.split(r"[./:]+", f"{case.get('classname', '')}.{case.get('name', '')}")
        stem = next((w for w in words if w in stems), None)
        if stem is not None:
            name = case.get("name", "").split("[")[0]
            key = (stem, "" if "." in name or "/" in name or name == stem else name)
            failed[key] = (problem.get("message") or "failed").splitlines()[0][:200]
    return failed


def project_sources(root: Path) -> list[Path]:
    """The installed apps that live in the project (not site-packages, not ours)."""
    from django.apps import apps

    found = []
    root = root.resolve()
    for config in apps.get_app_configs():
        path = Path(config.path).resolve()
        if config.name.startswith("kolo_django") or "site-packages" in path.parts:
            continue
        if path.is_relative_to(root):
            found.append(path)
    return found


def run_suite(
    directory: Path,
    stems: set[str],
    *,
    style: str,
    root: Path,
    coverage_sources: list[Path] | None = None,
    env: dict[str, str] | None = None,
    timeout: int = 1800,
) -> SuiteRun:
    """Run the suite in ``directory`` once with the project's runner, optionally
    under coverage.py, and name the tests that failed."""
    from .verify import run, runner_command

    with tempfile.TemporaryDirectory(prefix="kolo_suite_") as scratch:
        junit = Path(scratch) / "junit.xml"
        command = runner_command(style, directory, root, junit=junit if style == "pytest" else None)
        env = dict(os.environ if env is None else env)
        if coverage_sources is not None:
            env["COVERAGE_FILE"] = str(Path(scratch) / ".coverage")
            omit = ",".join(
                ["*/migrations/*", "*/tests/*", "*/tests.py", f"{directory.resolve()}/*"]
            )
            command = [
                sys.executable,
                "-m",
                "coverage",
                "run",
                "--source=" + ",".join(str(p) for p in coverage_sources),
                f"--omit={omit}",
                *command[1:],
            ]
        result = run(command, root, timeout=timeout, env=env)
        if style == "pytest" and junit.exists():
            failed = failures_junit(junit.read_text(), stems)
        else:
            failed = failures_unittest(result.output, stems)
        if not result.passed and not failed:
            failed = {(stem, ""): "the runner failed" for stem in stems}
        suite_run = SuiteRun(result.passed, result.output, failed)
        if coverage_sources is not None:
            report = run(
                [sys.executable, "-m", "coverage", "report", "--skip-empty"], root, env=env
            )
            suite_run.coverage_report = report.output
            json_path = Path(scratch) / "coverage.json"
            totals = run(
                [sys.executable, "-m", "coverage", "json", "-q", "-o", str(json_path)],
                root,
                env=env,
            )
            if totals.passed and json_path.exists():
                suite_run.coverage_totals = coverage_summary(
                    json.loads(json_path.read_text()), root
                )
    return suite_run


def coverage_summary(data: dict[str, Any], root: Path) -> dict[str, Any]:
    """Totals over every project file and over the views modules."""
    files = data.get("files") or {}

    def total(paths: list[str]) -> dict[str, Any]:
        statements = sum(files[p]["summary"]["num_statements"] for p in paths)
        covered = sum(files[p]["summary"]["covered_lines"] for p in paths)
        return {
            "statements": statements,
            "covered": covered,
            "percent": round(100 * covered / statements, 1) if statements else 0.0,
        }

    views = sorted(p for p in files if Path(p).name == "views.py" or "/views/" in p)
    return {
        "all": total(list(files)),
        "views": total(views),
        "per_view_module": {p: total([p]) for p in views},
    }
