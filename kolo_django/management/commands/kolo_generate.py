"""``manage.py kolo_generate TRACE_ID [TRACE_ID ...]``: a test from recorded traces."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ... import storage
from ...conf import get_config
from ...generation.api import GenerationError, generate
from ...generation.batch import ProjectRunner
from ...generation.minimize import MinimizeError, renderer
from ...generation.minimize import minimize as minimize_plan
from ...generation.naming import python_identifier
from ...generation.style import detect_style
from ...generation.verify import project_root, verify
from ...trace import TraceFormatError
from ._suite import SuiteWriter

STYLES = ("unittest", "pytest", "auto")


class Command(BaseCommand):
    help = "Write a test that replays the given traces and asserts what they did."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "trace_ids",
            nargs="*",
            metavar="TRACE_ID",
            help="trc_… ids; several make one test, in order (with --suite, one test each)",
        )
        parser.add_argument(
            "--style",
            default="auto",
            help="unittest, pytest or auto (default: the project's runner)",
        )
        parser.add_argument(
            "-o", "--output", help="file or directory to write to (default: stdout)"
        )
        parser.add_argument("--test-class", help="name of the TestCase class (unittest style)")
        parser.add_argument("--test-name", help="name of the test method or function")
        parser.add_argument(
            "--template", help="a Jinja2 template to render with instead of the built-in one"
        )
        parser.add_argument(
            "--verify",
            action="store_true",
            help="run the generated test; exit non-zero if it fails",
        )
        parser.add_argument(
            "--minimize",
            action="store_true",
            help="cut the arrange down to what the test needs: drop seed rows, seed fields "
            "and headers while the test still passes with every assert (implies --verify)",
        )
        parser.add_argument(
            "--force", action="store_true", help="overwrite an existing output file"
        )
        suite = parser.add_argument_group(
            "suite", "a deduplicated suite, one module per view, written into -o DIR"
        )
        suite.add_argument(
            "--since",
            metavar="TIME",
            help="traces recorded since TIME: an ISO date or datetime, or 30m, 2h, 1d ago",
        )
        suite.add_argument("--until", metavar="TIME", help="…and before TIME (same forms)")
        suite.add_argument("--last", type=int, metavar="N", help="the newest N traces")
        suite.add_argument(
            "--suite", action="store_true", help="make a suite of the given TRACE_IDs"
        )
        suite.add_argument(
            "--coverage",
            action="store_true",
            help="run the suite under coverage.py and report the project lines it covers",
        )

    def handle(
        self,
        *,
        trace_ids: list[str],
        style: str | None,
        output: str | None,
        test_class: str | None,
        test_name: str | None,
        template: str | None,
        verify: bool,
        force: bool,
        minimize: bool,
        verbosity: int,
        since: str | None = None,
        until: str | None = None,
        last: int | None = None,
        suite: bool = False,
        coverage: bool = False,
        **options: Any,
    ) -> None:
        style = style or get_config()["TEST_STYLE"]
        if style not in STYLES:
            raise CommandError(f"unknown style {style!r}; choose one of {', '.join(STYLES)}")
        if style == "auto":
            style = detect_style(project_root())
        if suite or since or until or last is not None or coverage:
            if test_class or test_name:
                raise CommandError("--test-class and --test-name name one test, not a suite")
            if minimize:
                raise CommandError("--minimize works on one test, not a suite")
            SuiteWriter(self, style=style, template=template, verbosity=verbosity).handle(
                trace_ids=trace_ids,
                since=since,
                until=until,
                last=last,
                output=output,
                verify=verify,
                coverage=coverage,
                force=force,
            )
            return
        if not trace_ids:
            raise CommandError("give one or more TRACE_IDs, or --since/--last for a suite")
        for name, value in (("--test-class", test_class), ("--test-name", test_name)):
            if value is not None and not python_identifier(value):
                raise CommandError(f"{name} {value!r} is not a Python identifier")
        documents = [self._load(trace_id) for trace_id in trace_ids]
        try:
            source, context = generate(
                documents,
                style=style,
                template=template,
                test_class=test_class,
                test_name=test_name,
            )
        except GenerationError as exc:
            raise CommandError(str(exc)) from None
        for note in context.get("skipped", []):
            self.stderr.write(f"skipped: {note}")
        path = None
        if minimize and output is not None:
            # Minimizing takes a while: an unusable -o fails before it, not after.
            path = self._output_path(Path(output), documents, style, force)
        if minimize:
            source = self._minimize(context, style, template, verbosity)
        elif verify:
            self._verify(source, style, verbosity)
        if output is None:
            self.stdout.write(source, ending="")
            return
        path = path or self._output_path(Path(output), documents, style, force)
        try:
            path.write_text(source)
        except OSError as exc:
            raise CommandError(f"cannot write {path}: {exc.strerror or exc}") from None
        if verbosity >= 1:
            self.stderr.write(f"wrote {path} ({style})")

    def _load(self, trace_id: str) -> dict[str, Any]:
        try:
            return storage.load(trace_id)
        except (LookupError, TraceFormatError) as exc:
            raise CommandError(exc.args[0] if exc.args else str(exc)) from None

    def _verify(self, source: str, style: str, verbosity: int) -> None:
        result = verify(source, style)
        if not result.passed:
            tail = "\n".join(result.output.splitlines()[-60:])
            self.stderr.write(tail)
            raise CommandError("the generated test failed (output above)")
        if verbosity >= 1:
            self.stderr.write(f"verified: the generated test passes ({style})")
        if verbosity >= 2:
            self.stderr.write(result.output)

    def _minimize(
        self, context: dict[str, Any], style: str, template: str | None, verbosity: int
    ) -> str:
        try:
            result = minimize_plan(
                context["plan"],
                render=renderer(style, template),
                runner=ProjectRunner(style),
                log=self.stderr.write if verbosity >= 2 else None,
            )
        except MinimizeError as exc:
            if exc.output:
                self.stderr.write("\n".join(exc.output.splitlines()[-60:]))
            raise CommandError(str(exc)) from None
        report = result.report
        if verbosity >= 1:
            for line in report.lines():
                self.stderr.write(line)
            if report.unminimized_reason:
                self.stderr.write(f"minimize: {report.unminimized_reason}")
            self.stderr.write(report.summary())
        return result.source

    def _output_path(
        self, path: Path, documents: list[dict[str, Any]], style: str, force: bool
    ) -> Path:
        if path.is_dir() or str(path).endswith(os.sep):
            if not path.exists():
                try:
                    path.mkdir(parents=True)
                except OSError as exc:
                    raise CommandError(f"cannot create {path}: {exc.strerror or exc}") from None
            stem = "test_" + _file_words(documents)
            candidate = path / f"{stem}.py"
            n = 1
            while candidate.exists():
                n += 1
                candidate = path / f"{stem}_{n}.py"
            return candidate
        if path.exists() and not force:
            raise CommandError(f"{path} exists; pass --force to overwrite it")
        if not path.parent.exists():
            raise CommandError(f"cannot write {path}: folder {path.parent} does not exist")
        if not os.access(path.parent, os.W_OK):
            raise CommandError(f"cannot write {path}: folder {path.parent} is not writable")
        if not re.match(r"test.*\.py$", path.name):
            self.stderr.write(f"note: {path.name} does not match the runner's test*.py pattern")
        return path


def _file_words(documents: list[dict[str, Any]]) -> str:
    from ...generation.naming import view_words

    words = [w.lower() for w in view_words(documents[0])]
    return "_".join(words)[:60] or "view"
