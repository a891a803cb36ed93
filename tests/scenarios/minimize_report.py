"""Before/after totals of ``--minimize`` on every example scenario.

    python -m tests.scenarios.minimize_report [--style unittest|pytest] [SCENARIO ...]

Records the scenarios on freshly seeded data (in a throwaway test database), generates
each test, minimizes it in a throwaway copy of the example project with that project's
runner, then runs every minimized test once more, all together, as an independent
check. Prints one row per scenario and the totals. ``KOLO_TEST_DB=postgres`` works as
for the test suite. Takes a few minutes: each scenario needs two to six runner starts.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class Line:
    scenario: str
    before: Any  # Counts
    after: Any
    runs: int
    seconds: float
    asserts_kept: bool
    passed_again: bool = False
    problem: str = ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--style", choices=("unittest", "pytest"), default="unittest")
    parser.add_argument("scenarios", nargs="*", help="names (default: all of them)")
    args = parser.parse_args(argv)

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()
    from django.db import connection
    from django.test.utils import setup_test_environment, teardown_test_environment

    from .scenarios import SCENARIOS

    names = args.scenarios or list(SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(unknown)}")
    setup_test_environment()
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        with tempfile.TemporaryDirectory(prefix="kolo_minimize_report_") as base:
            lines = run(names, args.style, Path(base))
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
        teardown_test_environment()
    print_table(lines, args.style)
    return 0 if all(line.passed_again and line.asserts_kept for line in lines) else 1


def run(names: list[str], style: str, base: Path) -> list[Line]:
    from kolo_django.generation.api import generate
    from kolo_django.generation.batch import ProjectRunner
    from kolo_django.generation.minimize import MinimizeError, count_asserts, minimize, renderer

    from ..helpers_recording import stub_api
    from . import project as proj
    from .recording import record_documents

    lines: list[Line] = []
    with stub_api() as api_url:
        root = proj.build_project(base / "project", api_url)
        documents = record_documents(names, api_url, base / "recording-media")
        runner = ProjectRunner(style, root=root, env=proj.runner_env(base, "minimize"))
        for name in names:
            print(f"{name} …", file=sys.stderr, flush=True)
            with contextlib.chdir(root):
                source, context = generate(documents[name], style=style)
                try:
                    result = minimize(context["plan"], render=renderer(style), runner=runner)
                except MinimizeError as exc:
                    counts = None
                    lines.append(Line(name, counts, counts, 0, 0.0, False, problem=str(exc)))
                    continue
            report = result.report
            kept = count_asserts(result.source) == count_asserts(source)
            lines.append(Line(name, report.before, report.after, report.runs, report.seconds, kept))
            module = proj.unittest_module(name)
            if style == "unittest":
                (root / proj.UNITTEST_PACKAGE / f"{module}.py").write_text(result.source)
            else:
                (root / proj.PYTEST_PACKAGE / f"{proj.pytest_module(name)}.py").write_text(
                    result.source
                )
        again = (
            proj.run_unittest(root, "again")
            if style == "unittest"
            else proj.run_pytest(root, "again")
        )
    for line in lines:
        module = (
            proj.unittest_module(line.scenario)
            if style == "unittest"
            else proj.pytest_module(line.scenario)
        )
        line.passed_again = again.outcome(module).passed
    return lines


def print_table(lines: list[Line], style: str) -> None:
    header = (
        f"{'scenario':<18} {'rows':>9} {'fields':>9} {'links':>7} {'headers':>7} "
        f"{'asserts':>7} {'runs':>4} {'seconds':>7}  passes"
    )
    print(f"--minimize on every example scenario ({style} style)")
    print(header)
    totals = [0] * 8
    runs = seconds = 0.0
    for line in lines:
        if line.problem:
            print(f"{line.scenario:<18} failed: {line.problem}")
            continue
        b, a = line.before, line.after
        print(
            f"{line.scenario:<18} {b.rows:>4}→{a.rows:<4} {b.fields:>4}→{a.fields:<4} "
            f"{b.links:>3}→{a.links:<3} {b.headers:>3}→{a.headers:<3} "
            f"{('=' + str(a.asserts)) if line.asserts_kept else 'LOST':>7} "
            f"{line.runs:>4} {line.seconds:>7.1f}  {'yes' if line.passed_again else 'NO'}"
        )
        for i, value in enumerate(
            (b.rows, a.rows, b.fields, a.fields, b.links, a.links, b.headers, a.headers)
        ):
            totals[i] += value
        runs += line.runs
        seconds += line.seconds
    done = [line for line in lines if not line.problem]
    print(
        f"{'total':<18} {totals[0]:>4}→{totals[1]:<4} {totals[2]:>4}→{totals[3]:<4} "
        f"{totals[4]:>3}→{totals[5]:<3} {totals[6]:>3}→{totals[7]:<3} {'':>7} "
        f"{int(runs):>4} {seconds:>7.1f}"
    )
    cut = sum(1 for line in done if line.after.rows < line.before.rows)
    print(
        f"{len(done)} of {len(lines)} scenarios minimized; seeded rows cut in {cut}; "
        f"{sum(line.passed_again for line in done)} pass when run again together; "
        f"mean {runs / max(len(done), 1):.1f} runs and {seconds / max(len(done), 1):.1f} s "
        "per scenario"
    )


if __name__ == "__main__":
    sys.exit(main())
