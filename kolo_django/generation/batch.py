"""Run many variants of a generated test in one invocation of the project's runner.

Each variant is a module of a throwaway package in the project folder; one run of
``manage.py test`` (through a runner subclass that writes each test's outcome to a JSON
file) or of ``pytest --junitxml`` says which variants passed. Starting the runner and
creating the test database cost far more than one generated test, so ``--minimize``
tries its candidate cuts side by side rather than one run each.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from .verify import project_root

RUN_TIMEOUT = 600

# Written next to the variants; ``manage.py test --testrunner`` loads it. It subclasses
# the project's own TEST_RUNNER, so the run is the project's in every other respect.
RESULTS_RUNNER = '''\
"""Records each test's outcome for kolo_django's --minimize (a throwaway file)."""

import json
import os

from django.conf import settings
from django.test.utils import get_runner

_ProjectRunner = get_runner(settings)


def _tests(suite):
    if hasattr(suite, "subsuites"):  # ParallelTestSuite
        for subsuite in suite.subsuites:
            yield from _tests(subsuite)
    elif hasattr(suite, "__iter__"):
        for item in suite:
            yield from _tests(item)
    else:
        yield suite


class Runner(_ProjectRunner):
    def run_suite(self, suite, **kwargs):
        ran = [test.id() for test in _tests(suite)]
        result = super().run_suite(suite, **kwargs)
        bad = [*result.failures, *result.errors, *result.skipped, *result.expectedFailures]
        failed = [f"{test.id()} {test}" for test, _ in bad]
        failed += [f"{test.id()} {test}" for test in result.unexpectedSuccesses]
        with open(os.environ["KOLO_BATCH_RESULTS"], "w") as results:
            json.dump({"ran": ran, "failed": failed}, results)
        return result
'''

_VARIANT = re.compile(r"\btest_(v\d+)\b")


class BatchProblem(Exception):
    """The runner gave no per-test results (it could not start, or timed out)."""

    def __init__(self, message: str, output: str = "") -> None:
        super().__init__(message)
        self.output = output


@dataclass
class BatchResult:
    passed: dict[str, bool]  # variant name -> passed
    output: str
    command: list[str]
    seconds: float


class Runner(Protocol):
    def run(self, sources: Mapping[str, str]) -> BatchResult: ...


def variant_names(count: int) -> list[str]:
    width = max(3, len(str(count - 1)))
    return [f"v{n:0{width}d}" for n in range(count)]


@dataclass
class ProjectRunner:
    """Runs variants with the project's runner: ``manage.py test`` or ``pytest``.

    ``root`` is the folder holding manage.py (found as ``--verify`` finds it when
    None); ``env`` replaces the environment of the runner process."""

    style: str
    root: Path | None = None
    env: dict[str, str] | None = None
    timeout: float = RUN_TIMEOUT
    extra_args: list[str] = field(default_factory=list)

    def run(self, sources: Mapping[str, str]) -> BatchResult:
        """Run every source (by variant name, see ``variant_names``) in one invocation."""
        root = (self.root or project_root()).resolve()
        package = Path(tempfile.mkdtemp(prefix="kolo_minimize_", dir=root))
        results = package / "results.json" if self.style != "pytest" else package / "junit.xml"
        started = time.monotonic()
        try:
            (package / "__init__.py").write_text("")
            for name, source in sources.items():
                if not re.fullmatch(r"v\d+", name):
                    raise ValueError(f"variant name {name!r} is not v<digits>")
                (package / f"test_{name}.py").write_text(source)
            env = dict(os.environ if self.env is None else self.env)
            env["PYTHONDONTWRITEBYTECODE"] = "1"
            env["KOLO_BATCH_RESULTS"] = str(results)
            command = self._command(root, package, results, sorted(sources))
            try:
                completed = subprocess.run(
                    command,
                    cwd=root,
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=self.timeout,
                    check=False,
                )
            except subprocess.TimeoutExpired as exc:
                output = _text(exc.stdout) + _text(exc.stderr)
                raise BatchProblem(
                    f"the test runner did not finish within {self.timeout:g} s", output
                ) from None
            output = (completed.stdout + completed.stderr).strip()
            if not results.exists():
                raise BatchProblem(
                    f"the test runner exited with {completed.returncode} and reported no results",
                    output,
                )
            text = results.read_text()
            ran, failed = parse_junit(text) if self.style == "pytest" else parse_results_json(text)
            passed = {name: name in ran and name not in failed for name in sources}
            return BatchResult(passed, output, command, time.monotonic() - started)
        finally:
            shutil.rmtree(package, ignore_errors=True)

    def _command(self, root: Path, package: Path, results: Path, names: list[str]) -> list[str]:
        # Each module named: whatever python_files or pattern the project sets.
        if self.style == "pytest":
            return [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                "--rootdir",
                str(root),
                f"--junitxml={results}",
                *self.extra_args,
                *(str(package / f"test_{name}.py") for name in names),
            ]
        (package / "kolo_results_runner.py").write_text(RESULTS_RUNNER)
        return [
            sys.executable,
            str(root / "manage.py"),
            "test",
            "--noinput",
            "--testrunner",
            f"{package.name}.kolo_results_runner.Runner",
            *self.extra_args,
            *(f"{package.name}.test_{name}" for name in names),
        ]


def _text(value: str | bytes | None) -> str:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return value or ""


def _variants(text: str) -> set[str]:
    return set(_VARIANT.findall(text))


def parse_results_json(text: str) -> tuple[set[str], set[str]]:
    """(variants that ran, variants with a failure, error or skip) from the runner's file."""
    data = json.loads(text)
    ran = {v for test_id in data.get("ran", []) for v in _variants(test_id)}
    failed = {v for entry in data.get("failed", []) for v in _variants(entry)}
    return ran, failed


def parse_junit(text: str) -> tuple[set[str], set[str]]:
    """(variants that ran, variants with a failure, error or skip) from pytest's JUnit XML."""
    ran: set[str] = set()
    failed: set[str] = set()
    for case in ET.fromstring(text).iter("testcase"):
        found = _variants(f"{case.get('classname', '')}.{case.get('name', '')}")
        ran |= found
        if any(child.tag in ("failure", "error", "skipped") for child in case):
            failed |= found
    return ran, failed
