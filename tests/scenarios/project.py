"""Throwaway copies of the example project where generated tests are run, and their runners.

Each project is ``<base>/<name>/``: the example project without kolo_django, a settings
module (``scenario_settings``), a ``pytest.ini``, and the packages ``generated/`` (unittest
style, found by ``manage.py test generated``) and ``generated_pytest/`` (pytest style).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = REPO_ROOT / "example_project"
UNITTEST_PACKAGE = "generated"
PYTEST_PACKAGE = "generated_pytest"
# Where the browsing session's suite is written, per style (kolo_generate makes the packages).
SUITE_PACKAGES = {"unittest": "session_suite", "pytest": "session_suite_pytest"}
RUN_TIMEOUT = 600

SETTINGS = '''\
"""Settings for running generated tests: the example project, without kolo_django."""

import importlib.util
import os

os.environ["EXAMPLE_WITHOUT_KOLO"] = "1"

from example.settings import *  # noqa: E402,F403
from example.settings import BASE_DIR, INSTALLED_APPS, MIDDLEWARE  # noqa: E402

# Generated tests must be self-contained: the recorder is not even importable here.
if importlib.util.find_spec("kolo_django") is not None:
    raise RuntimeError("kolo_django is importable from the throwaway project")

INSTALLED_APPS = [app for app in INSTALLED_APPS if not app.startswith("kolo_django")]
MIDDLEWARE = [name for name in MIDDLEWARE if not name.startswith("kolo_django")]
DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
MEDIA_ROOT = os.environ.get("SCENARIO_MEDIA_ROOT") or str(BASE_DIR / "media")
# The base URL the outbound-HTTP scenarios were recorded against (a stub, now gone).
EXAMPLE_API_URL = {api_url!r}

if os.environ.get("KOLO_TEST_DB") == "postgres":
    DATABASES = {{
        "default": {{
            "ENGINE": "django.db.backends.postgresql",
            "NAME": "postgres",
            "USER": os.environ.get("KOLO_TEST_PG_USER", "postgres"),
            "HOST": "127.0.0.1",
            "PORT": "5432",
            "TEST": {{"NAME": os.environ.get("SCENARIO_PG_TEST_NAME", f"test_kolo_scen_{{os.getpid()}}")}},
        }}
    }}
elif os.environ.get("KOLO_TEST_DB") == "mariadb":
    DATABASES = {{
        "default": {{
            "ENGINE": "django.db.backends.mysql",
            "NAME": "mysql",
            "USER": "root",
            "HOST": "127.0.0.1",
            "PORT": "3306",
            "OPTIONS": {{"charset": "utf8mb4"}},
            "TEST": {{
                "NAME": os.environ.get("SCENARIO_PG_TEST_NAME", f"test_kolo_scen_{{os.getpid()}}"),
                "CHARSET": "utf8mb4",
                "COLLATION": "utf8mb4_unicode_ci",
            }},
        }}
    }}
else:
    DATABASES = {{
        "default": {{"ENGINE": "django.db.backends.sqlite3", "NAME": str(BASE_DIR / "db.sqlite3")}}
    }}
'''

# Put first on the runners' PYTHONPATH: an editable install of kolo_django (``pip install
# -e .``) registers an import hook that would make it importable from anywhere.
SITECUSTOMIZE = '''\
"""Hide kolo_django from the generated tests' runners: the tests must not need it."""

import sys

sys.meta_path[:] = [
    finder for finder in sys.meta_path if "kolo_django" not in getattr(finder, "__module__", "")
]
sys.path[:] = [
    entry for entry in sys.path if not __import__("os").path.isdir(f"{entry}/kolo_django")
]
'''

PYTEST_INI = """\
[pytest]
DJANGO_SETTINGS_MODULE = scenario_settings
django_find_project = false
pythonpath = .
testpaths = generated_pytest
python_files = test_*.py
"""


@dataclass
class Outcome:
    status: str  # passed | failed | error | skipped | missing
    detail: str = ""

    @property
    def passed(self) -> bool:
        return self.status == "passed"


@dataclass
class RunResult:
    command: list[str]
    returncode: int | None
    output: str
    outcomes: dict[str, Outcome] = field(default_factory=dict)

    def outcome(self, module: str) -> Outcome:
        """The outcome of the one test module ``module`` (e.g. ``test_list``)."""
        found = self.outcomes.get(module)
        if found is not None:
            return found
        tail = self.output[-4000:]
        return Outcome("missing", f"no result for {module} (exit {self.returncode}):\n{tail}")


def unittest_module(scenario: str) -> str:
    return f"test_{scenario}"


def pytest_module(scenario: str) -> str:
    return f"test_{scenario}_pytest"


def build_project(root: Path, api_url: str) -> Path:
    """A fresh copy of the example project at ``root`` with empty test packages."""
    shutil.copytree(
        EXAMPLE,
        root,
        ignore=shutil.ignore_patterns(
            "db.sqlite3", "media", "__pycache__", "*.pyc", "test.sqlite3"
        ),
    )
    (root / "scenario_settings.py").write_text(SETTINGS.format(api_url=api_url))
    (root / "pytest.ini").write_text(PYTEST_INI)
    for package in (UNITTEST_PACKAGE, PYTEST_PACKAGE):
        (root / package).mkdir()
        (root / package / "__init__.py").write_text("")
    return root


def write_tests(root: Path, scenario: str, unittest_source: str, pytest_source: str) -> None:
    (root / UNITTEST_PACKAGE / f"{unittest_module(scenario)}.py").write_text(unittest_source)
    (root / PYTEST_PACKAGE / f"{pytest_module(scenario)}.py").write_text(pytest_source)


def generated_files(root: Path) -> list[Path]:
    return sorted(
        path
        for package in (UNITTEST_PACKAGE, PYTEST_PACKAGE)
        for path in (root / package).glob("test_*.py")
    )


# --- mutations ----------------------------------------------------------------------------


def replace_in_function(source: str, function: str, old: str, new: str) -> str:
    """Replace the single occurrence of ``old`` inside top-level ``function``."""
    start = source.find(f"\ndef {function}(")
    if start < 0:
        raise LookupError(f"no function {function}")
    end_match = re.compile(r"\n(?=@|def |class |[A-Z_]+ =)").search(source, start + 1)
    end = end_match.start() if end_match else len(source)
    body = source[start:end]
    if body.count(old) != 1:
        raise LookupError(f"{old!r} occurs {body.count(old)} times in {function}")
    return source[:start] + body.replace(old, new) + source[end:]


def mutate(root: Path, edits: list[tuple[str, str, str, str]]) -> None:
    for filename, function, old, new in edits:
        path = root / "todos" / filename
        text = replace_in_function(path.read_text(), function, old, new)
        compile(text, str(path), "exec")
        path.write_text(text)


# --- runners ------------------------------------------------------------------------------


def isolation_dir(base: Path) -> Path:
    """A folder holding only ``sitecustomize.py``, which hides kolo_django."""
    folder = base / "isolation"
    folder.mkdir(exist_ok=True)
    (folder / "sitecustomize.py").write_text(SITECUSTOMIZE)
    return folder


def runner_env(base: Path, label: str) -> dict[str, str]:
    """The environment of a runner subprocess: nothing of this pytest session leaks in,
    and kolo_django cannot be imported (see ``SITECUSTOMIZE``)."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PYTEST_", "DJANGO_", "KOLO_DJANGO"))
        and key not in {"PYTHONPATH", "PYTHONSTARTUP", "PYTHONHOME"}
    }
    media = base / f"media-{label}"
    media.mkdir(exist_ok=True)
    env.update(
        DJANGO_SETTINGS_MODULE="scenario_settings",
        PYTHONDONTWRITEBYTECODE="1",
        EXAMPLE_WITHOUT_KOLO="1",
        PYTHONPATH=str(isolation_dir(base)),
        SCENARIO_MEDIA_ROOT=str(media),
        SCENARIO_PG_TEST_NAME=f"test_kolo_scen_{os.getpid()}_{label}",
    )
    return env


def _run(command: list[str], root: Path, label: str) -> RunResult:
    try:
        completed = subprocess.run(
            command,
            cwd=root,
            env=runner_env(root.parent, label),
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        output = f"timed out after {RUN_TIMEOUT} s\n{exc.stdout or ''}{exc.stderr or ''}"
        return RunResult(command, None, output)
    return RunResult(command, completed.returncode, completed.stdout + completed.stderr)


def run_unittest(root: Path, label: str) -> RunResult:
    command = [
        sys.executable,
        "manage.py",
        "test",
        UNITTEST_PACKAGE,
        "--noinput",
        "--verbosity",
        "2",
    ]
    result = _run(command, root, label)
    result.outcomes = parse_unittest(result.output, UNITTEST_PACKAGE)
    return result


def run_pytest(root: Path, label: str) -> RunResult:
    report = root.parent / f"junit-{label}.xml"
    command = [
        sys.executable,
        "-m",
        "pytest",
        PYTEST_PACKAGE,
        "-p",
        "no:cacheprovider",
        "-p",
        "no:xdist",
        "-q",
        "--continue-on-collection-errors",
        f"--junitxml={report}",
    ]
    result = _run(command, root, label)
    if report.exists():
        result.outcomes = parse_junit(report.read_text(), PYTEST_PACKAGE)
    return result


def run_session_suite(root: Path, style: str) -> Any:
    """The session suite run once with its runner; the unittest run under coverage.py,
    measuring the example apps (through kolo_django's own suite runner)."""
    from kolo_django.generation.suite import run_suite

    directory = root / SUITE_PACKAGES[style]
    stems = {path.stem for path in directory.glob("test_*.py")}
    sources = [root / "todos", root / "catalog"] if style == "unittest" else None
    return run_suite(
        directory,
        stems,
        style=style,
        root=root,
        coverage_sources=sources,
        env=runner_env(root.parent, f"suite_{style}"),
        timeout=RUN_TIMEOUT,
    )


# --- parsing ------------------------------------------------------------------------------

_SECTION = re.compile(r"^={50,}\n(FAIL|ERROR): (\S+) \(([\w.]+)\)\n", re.M)
_HEADER = re.compile(r"^(\w+) \(([\w.]+)\)(?:\n[^\n]*?)? \.\.\. ", re.M)
_SKIPPED = re.compile(r"^(\w+) \(([\w.]+)\)(?:\n[^\n]*?)? \.\.\. skipped", re.M)


def _module_of(test_id: str, package: str) -> str | None:
    """``generated.test_x.Class.test_y`` -> ``test_x``; import failures are named too."""
    match = re.search(rf"(?:^|\.){package}\.(test_\w+?)(?:\.|$)", test_id)
    return match.group(1) if match else None


def parse_unittest(output: str, package: str) -> dict[str, Outcome]:
    """Per-module outcomes from ``manage.py test --verbosity 2`` output.

    Statuses come from the FAIL/ERROR sections rather than the ``... ok`` suffix, which
    log output from the test may push onto a later line.
    """
    outcomes: dict[str, Outcome] = {}
    for match in _HEADER.finditer(output):
        module = _module_of(match.group(2), package)
        if module:
            outcomes.setdefault(module, Outcome("passed"))
    for match in _SKIPPED.finditer(output):
        module = _module_of(match.group(2), package)
        if module:
            outcomes[module] = Outcome("skipped")
    sections = list(_SECTION.finditer(output))
    for index, match in enumerate(sections):
        module = _module_of(match.group(3), package) or _module_of(match.group(2), package)
        if not module:
            continue
        end = sections[index + 1].start() if index + 1 < len(sections) else len(output)
        text = output[match.start() : end]
        text = re.split(r"^-{50,}\nRan \d+ tests?", text, flags=re.M)[0]
        status = "failed" if match.group(1) == "FAIL" else "error"
        previous = outcomes.get(module)
        detail = text if previous is None or previous.passed else previous.detail + "\n" + text
        outcomes[module] = Outcome(status, detail.strip())
    return outcomes


def parse_junit(xml_text: str, package: str) -> dict[str, Outcome]:
    outcomes: dict[str, Outcome] = {}
    for case in ET.fromstring(xml_text).iter("testcase"):
        test_id = f"{case.get('classname', '')}.{case.get('name', '')}"
        module = _module_of(test_id, package)
        if not module:
            continue
        status, detail = "passed", ""
        for child in case:
            if child.tag in ("failure", "error"):
                status = "failed" if child.tag == "failure" else "error"
                detail = f"{child.get('message', '')}\n{child.text or ''}".strip()
                break
            if child.tag == "skipped":
                status, detail = "skipped", child.get("message", "")
        previous = outcomes.get(module)
        if previous is None or previous.passed:
            outcomes[module] = Outcome(status, detail)
    return outcomes
