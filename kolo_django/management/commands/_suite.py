"""``kolo_generate --since/--last/--suite -o DIR``: a regression suite from many traces."""

from __future__ import annotations

import datetime as dt
import re
import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.template.defaultfilters import pluralize
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from ... import storage
from ...conf import get_config
from ...generation import suite as suites
from ...generation.verify import project_root
from ...trace import TraceFormatError

INDEX_NAME = "INDEX.md"
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_time(option: str, text: str) -> dt.datetime:
    """An ISO date or datetime, or an age such as ``30m``, ``2h``, ``1d``."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", text)
    if match:
        return timezone.now() - dt.timedelta(**{UNITS[match.group(2)]: float(match.group(1))})
    try:
        value = parse_datetime(text.strip())
        if value is None:
            day = parse_date(text.strip())
            value = dt.datetime.combine(day, dt.time.min) if day else None
    except ValueError:
        value = None
    if value is None:
        raise CommandError(
            f"{option} {text!r} is not a time: give an ISO date or datetime, or an age like 30m, 2h, 1d"
        )
    if timezone.is_naive(value):
        value = timezone.make_aware(value)
    return value


def counted(n: int, noun: str) -> str:
    return f"{n} {noun}{pluralize(n)}"


class Progress:
    """A one-line bar on stderr, only when stderr is a terminal."""

    def __init__(self, command: BaseCommand, total: int, label: str) -> None:
        self.out = command.stderr
        self.total = total
        self.label = label
        self.enabled = total > 1 and self.out.isatty()

    def __call__(self, done: int) -> None:
        if not self.enabled:
            return
        width = 30
        filled = int(width * done / self.total)
        self.out.write(
            f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {done}/{self.total}",
            ending="",
        )
        self.out.flush()

    def close(self) -> None:
        if self.enabled:
            self.out.write("\r" + " " * (len(self.label) + 45) + "\r", ending="")
            self.out.flush()


class SuiteWriter:
    def __init__(
        self, command: BaseCommand, *, style: str, template: str | None, verbosity: int
    ) -> None:
        self.command = command
        self.style = style
        self.template = template
        self.verbosity = verbosity

    def say(self, text: str, level: int = 1) -> None:
        if self.verbosity >= level:
            self.command.stderr.write(text)

    def handle(
        self,
        *,
        trace_ids: list[str],
        since: str | None,
        until: str | None,
        last: int | None,
        output: str | None,
        verify: bool,
        coverage: bool,
        force: bool,
    ) -> None:
        started = time.monotonic()
        ids = self.select(trace_ids, since, until, last)
        if output is None:
            raise CommandError("a suite is written into a folder: pass -o DIR")
        directory = Path(output)
        if directory.exists() and not directory.is_dir():
            raise CommandError(f"{directory} is a file; a suite needs a folder (-o DIR)")
        progress = Progress(self.command, len(ids), "generating")
        try:
            suite = suites.build_suite(
                ((trace_id, self.loader(trace_id)) for trace_id in ids),
                style=self.style,
                template=self.template,
                progress=progress,
            )
        finally:
            progress.close()
        if not suite.tests:
            for skipped in suite.skipped:
                self.say(f"skipped {skipped.trace_id}: {skipped.reason}")
            raise CommandError(f"none of the {len(ids)} traces could become a test")
        formatter = get_config()["FORMATTER"]
        modules = suites.render_modules(suite, formatter)
        self.check_free(directory, modules, force)
        written = self.write(directory, modules, {})
        coverage_text = ""
        if verify or coverage:
            run = self.run(directory, suite, coverage)
            if run.failed and suite.tests:
                dropped = self.drop_failed(suite, run.failed)
                self.say(f"{dropped} tests failed when run and were left out; running again")
                modules = suites.render_modules(suite, formatter)
                written = self.write(directory, modules, written)
                run = self.run(directory, suite, coverage)
            if not run.passed:
                tail = "\n".join(run.output.splitlines()[-40:])
                self.command.stderr.write(tail)
                raise CommandError(f"the suite in {directory} fails when run (output above)")
            coverage_text = self.coverage_text(run)
        title = f"Tests generated from {len(ids)} recorded requests"
        (directory / INDEX_NAME).write_text(
            suites.index_text(suite, title=title, coverage=coverage_text)
        )
        duplicates = sum(1 for s in suite.skipped if s.reason.startswith("same as"))
        others = len(suite.skipped) - duplicates
        self.command.stdout.write(
            f"wrote {counted(len(suite.tests), 'test')} in {counted(len(modules), 'module')} "
            f"to {directory} from {counted(len(ids), 'trace')} ({duplicates} duplicates, "
            f"{others} skipped otherwise); index: {directory / INDEX_NAME}"
        )
        if self.verbosity >= 2:
            for skipped in suite.skipped:
                self.say(
                    f"skipped {skipped.trace_id} {skipped.method} {skipped.path}: {skipped.reason}",
                    2,
                )
        if verify or coverage:
            self.command.stdout.write(
                f"verified: {counted(len(suite.tests), 'test')} pass ({self.style})"
            )
        if coverage_text:
            self.command.stdout.write(coverage_text.rstrip())
        self.say(f"done in {time.monotonic() - started:.1f} s", 2)

    # --- selection --------------------------------------------------------------------

    def select(
        self, trace_ids: list[str], since: str | None, until: str | None, last: int | None
    ) -> list[str]:
        if trace_ids and (since or until or last is not None):
            raise CommandError("give TRACE_IDs or --since/--until/--last, not both")
        if last is not None and last < 1:
            raise CommandError(f"--last must be at least 1, not {last}")
        queryset = storage.listing()
        if trace_ids:
            found = set(queryset.filter(pk__in=trace_ids).values_list("pk", flat=True))
            missing = [t for t in trace_ids if t not in found]
            if missing:
                raise CommandError(f"no trace {missing[0]}")
            return list(dict.fromkeys(trace_ids))
        if since:
            queryset = queryset.filter(created_at__gte=parse_time("--since", since))
        if until:
            queryset = queryset.filter(created_at__lt=parse_time("--until", until))
        if last is not None:
            ids = list(queryset.order_by("-created_at", "-id").values_list("pk", flat=True)[:last])
            ids.reverse()
        else:
            ids = list(queryset.order_by("created_at", "id").values_list("pk", flat=True))
        if not ids:
            raise CommandError("no traces were recorded in that time")
        return ids

    @staticmethod
    def loader(trace_id: str) -> Any:
        def load() -> dict[str, Any]:
            try:
                return storage.load(trace_id)
            except (LookupError, TraceFormatError) as exc:
                raise ValueError(exc.args[0] if exc.args else str(exc)) from None

        return load

    # --- files ------------------------------------------------------------------------

    def check_free(self, directory: Path, modules: dict[str, str], force: bool) -> None:
        if force:
            return
        taken = [stem for stem in modules if (directory / f"{stem}.py").exists()]
        if taken:
            raise CommandError(
                f"{directory / (taken[0] + '.py')} exists; pass --force to overwrite the suite"
            )

    def write(
        self, directory: Path, modules: dict[str, str], previous: dict[str, Path]
    ) -> dict[str, Path]:
        try:
            directory.mkdir(parents=True, exist_ok=True)
            init = directory / "__init__.py"
            if not init.exists():
                init.write_text("")
            written = {}
            for stem, source in modules.items():
                path = directory / f"{stem}.py"
                path.write_text(source)
                written[stem] = path
            for stem, path in previous.items():
                if stem not in written:
                    path.unlink(missing_ok=True)
        except OSError as exc:
            raise CommandError(f"cannot write {directory}: {exc.strerror or exc}") from None
        return written

    # --- running ----------------------------------------------------------------------

    def run(self, directory: Path, suite: suites.Suite, coverage: bool) -> suites.SuiteRun:
        root = project_root()
        sources = None
        if coverage:
            import importlib.util

            if importlib.util.find_spec("coverage") is None:
                raise CommandError("--coverage needs coverage.py: pip install coverage")
            sources = suites.project_sources(root)
            if not sources:
                raise CommandError(f"no installed app lives under {root} to measure")
        self.say(f"running the suite with {self.style}{' under coverage' if coverage else ''}…")
        result = suites.run_suite(
            directory.resolve(),
            {t.module for t in suite.tests},
            style=self.style,
            root=root,
            coverage_sources=sources,
        )
        if self.verbosity >= 2:
            self.command.stderr.write(result.output)
        return result

    def drop_failed(self, suite: suites.Suite, failed: dict[tuple[str, str], str]) -> int:
        kept = []
        for test in suite.tests:
            reason = failed.get((test.module, test.test_name)) or failed.get((test.module, ""))
            if reason is None:
                kept.append(test)
            else:
                suite.skipped.append(
                    suites.Skipped(
                        test.trace_id, test.method, test.path, f"failed when run: {reason}"
                    )
                )
        dropped = len(suite.tests) - len(kept)
        suite.tests[:] = kept
        return dropped

    def coverage_text(self, run: suites.SuiteRun) -> str:
        totals = run.coverage_totals
        lines = [run.coverage_report.rstrip()] if run.coverage_report else []
        if totals:
            every, views = totals["all"], totals["views"]
            lines.append(
                f"coverage: {every['percent']}% of {every['statements']} project statements; "
                f"views: {views['percent']}% of {views['statements']}"
            )
        return "\n".join(lines)
