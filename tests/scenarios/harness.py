"""The work behind the scenario suite's session fixture.

Once per session (in the one xdist worker that runs the ``scenarios`` group) it records
every scenario on freshly seeded data, generates a test from each in both styles, writes
them into throwaway copies of the example project (one clean, one per mutation kind),
and runs every project's runners once, in parallel. The tests then only read results.
"""

from __future__ import annotations

import contextlib
import logging
import os
import traceback
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from io import StringIO
from pathlib import Path
from typing import Any

from ..helpers_recording import stub_api
from . import project as proj
from .mutations import CONTROLS, MUTATIONS
from .scenarios import FIXED_SECRETS, SCENARIOS, Session, browsing_session

STYLES = ("unittest", "pytest")
# Scenarios generated a second time with every hook of KOLO_DJANGO in use.
HOOKED = ("list", "detail", "create", "update", "api_create", "flow")
HOOKED_SUFFIX = "_hooks"


def hook_options(style: str) -> dict[str, Any]:
    """Factories, a field parser, two processors and a team template extending
    the built-in one, as example/settings_hooks.py configures them."""
    return {
        "factories": [
            {"path": "todos.factories.UserFactory"},
            {"path": "todos.factories.TodoListFactory", "pk": True},
            {"path": "todos.factories.TodoFactory", "pk": True},
        ],
        "parsers": {"todos.fields.ColorField": "todos.generation.parse_color"},
        "processors": ["todos.generation.recorded_prefix", "todos.generation.ticket_docstring"],
        "template": str(proj.EXAMPLE / "kolo_templates" / f"{style}_team.py.j2"),
    }


@dataclass
class Generated:
    scenario: str
    trace_ids: list[str] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)
    problem: str = ""


@dataclass
class SessionSuite:
    """The browsing session turned into a suite with ``kolo_generate --suite``."""

    trace_ids: list[str] = field(default_factory=list)
    summaries: dict[str, str] = field(default_factory=dict)  # style -> the command's stdout
    problem: str = ""
    results: dict[str, Any] = field(default_factory=dict)  # style -> suite.SuiteRun


@dataclass
class ScenarioRun:
    base: Path
    project: Path
    generated: dict[str, Generated]
    secrets: set[str]
    results: dict[str, proj.RunResult]
    mutant_results: dict[tuple[str, str], proj.RunResult]
    mutant_problems: dict[str, str]
    session_suite: SessionSuite

    def outcome(self, style: str, scenario: str) -> proj.Outcome:
        return self._outcome(self.results[style], style, scenario)

    def mutant_outcome(self, kind: str, style: str, scenario: str) -> proj.Outcome:
        return self._outcome(self.mutant_results[(kind, style)], style, scenario)

    @staticmethod
    def _outcome(result: proj.RunResult, style: str, scenario: str) -> proj.Outcome:
        module = (
            proj.unittest_module(scenario) if style == "unittest" else proj.pytest_module(scenario)
        )
        return result.outcome(module)


class _Rollback(Exception):
    pass


@contextlib.contextmanager
def quiet_request_log() -> Iterator[None]:
    """The 403/404 scenarios would log warnings into the first test's captured output."""
    logger = logging.getLogger("django.request")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def record_and_generate(
    api_url: str, media_root: Path, project_root: Path
) -> tuple[dict[str, Generated], set[str]]:
    """Record every scenario on seeded data and generate its tests; the database is
    left as it was (everything happens in a transaction that is rolled back).

    Generation runs in ``project_root``, as ``manage.py kolo_generate`` would in the
    project the tests are for: the generator formats with ruff, whose import sorting
    depends on the working directory (from this repo's root, ``todos`` is third-party).
    """
    from django.contrib.auth import get_user_model
    from django.core import mail
    from django.core.management import call_command
    from django.db import transaction
    from django.test import override_settings

    from kolo_django import storage
    from kolo_django.generation.api import generate

    if not hasattr(mail, "outbox"):
        mail.outbox = []
    generated = {name: Generated(name) for name in SCENARIOS}
    secrets = set(FIXED_SECRETS)
    with contextlib.suppress(_Rollback), transaction.atomic(), quiet_request_log():
        with override_settings(EXAMPLE_API_URL=api_url, MEDIA_ROOT=str(media_root)):
            call_command("seed_example", todos=60, stdout=StringIO())
            secrets.update(get_user_model().objects.values_list("password", flat=True))
            documents: dict[str, list[dict[str, Any]]] = {}
            for name, scenario in SCENARIOS.items():
                session = Session()
                try:
                    with contextlib.suppress(_Rollback), transaction.atomic():
                        scenario(session)
                        generated[name].trace_ids = list(session.trace_ids)
                        documents[name] = [storage.load(i) for i in session.trace_ids]
                        raise _Rollback
                except Exception:
                    generated[name].problem = "recording failed:\n" + traceback.format_exc()
                secrets.update(session.secrets)
            session_suite = record_session_suite(project_root)
            secrets.update(session_suite.secrets)
        with contextlib.chdir(project_root):
            for name, docs in documents.items():
                for style in STYLES:
                    try:
                        generated[name].sources[style] = generate(docs, style=style)[0]
                    except Exception:
                        generated[name].problem += (
                            f"generation ({style}) failed:\n" + traceback.format_exc()
                        )
                if name in HOOKED:
                    hooked = generated.setdefault(
                        name + HOOKED_SUFFIX, Generated(name + HOOKED_SUFFIX)
                    )
                    for style in STYLES:
                        try:
                            hooked.sources[style] = generate(
                                docs, style=style, **hook_options(style)
                            )[0]
                        except Exception:
                            hooked.problem += (
                                f"generation ({style}) failed:\n" + traceback.format_exc()
                            )
        raise _Rollback
    return generated, {s for s in secrets if s}, session_suite.suite


@dataclass
class _Recorded:
    suite: SessionSuite
    secrets: set[str]


def record_session_suite(project_root: Path) -> _Recorded:
    """Record the browsing session and write it as a suite in both styles into the
    project's ``session_suite`` packages (rolled back like the scenarios)."""
    from django.core.management import call_command
    from django.db import transaction

    suite = SessionSuite()
    session = Session()
    try:
        with contextlib.suppress(_Rollback), transaction.atomic():
            browsing_session(session)
            suite.trace_ids = list(session.trace_ids)
            with contextlib.chdir(project_root):
                for style in STYLES:
                    out = StringIO()
                    call_command(
                        "kolo_generate",
                        *session.trace_ids,
                        "--suite",
                        "--style",
                        style,
                        "-o",
                        str(project_root / proj.SUITE_PACKAGES[style]),
                        stdout=out,
                        stderr=StringIO(),
                    )
                    suite.summaries[style] = out.getvalue()
            raise _Rollback
    except Exception:
        suite.problem = "the browsing session's suite failed:\n" + traceback.format_exc()
    return _Recorded(suite, session.secrets)


def _write(root: Path, generated: dict[str, Generated], names: list[str]) -> None:
    for name in names:
        sources = generated[name].sources
        if len(sources) == len(STYLES):
            proj.write_tests(root, name, sources["unittest"], sources["pytest"])


def run_all(base: Path, django_db_blocker: Any) -> ScenarioRun:
    """Record, generate, build the projects and run every runner once."""
    with django_db_blocker.unblock(), stub_api() as api_url:
        baseline = proj.build_project(base / "baseline", api_url)
        generated, secrets, session_suite = record_and_generate(
            api_url, base / "recording-media", baseline
        )
    _write(baseline, generated, list(generated))

    jobs: dict[Any, Any] = {
        "unittest": lambda: proj.run_unittest(baseline, "base_u"),
        "pytest": lambda: proj.run_pytest(baseline, "base_p"),
    }
    if not session_suite.problem:
        for style in STYLES:
            jobs[("suite", style)] = lambda style=style: proj.run_session_suite(baseline, style)
    mutant_problems: dict[str, str] = {}
    for kind, mutation in MUTATIONS.items():
        root = proj.build_project(base / f"mutant_{kind}", api_url)
        try:
            proj.mutate(root, mutation.edits)
        except (LookupError, SyntaxError) as exc:
            mutant_problems[kind] = f"mutation {kind} could not be applied: {exc}"
            continue
        _write(root, generated, [*mutation.targets, *CONTROLS])
        jobs[(kind, "unittest")] = lambda root=root, kind=kind: proj.run_unittest(root, f"{kind}_u")
        jobs[(kind, "pytest")] = lambda root=root, kind=kind: proj.run_pytest(root, f"{kind}_p")

    workers = max(2, min(4, (os.cpu_count() or 2) + 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {key: pool.submit(job) for key, job in jobs.items()}
        done = {key: future.result() for key, future in futures.items()}
    for style in STYLES:
        if ("suite", style) in done:
            session_suite.results[style] = done[("suite", style)]

    return ScenarioRun(
        base=base,
        project=baseline,
        generated=generated,
        secrets=secrets,
        results={style: done[style] for style in STYLES},
        mutant_results={
            key: value
            for key, value in done.items()
            if isinstance(key, tuple) and key[0] != "suite"
        },
        mutant_problems=mutant_problems,
        session_suite=session_suite,
    )
