"""``manage.py kolo_traces``: list, show, delete, prune, export and import stored traces.

Every expected failure is a ``CommandError`` with one line of text. Commands
that change traces check all their input before they change anything.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import sys
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import IO, Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError, IntegrityError, OperationalError, ProgrammingError, transaction
from django.utils import timezone

from kolo_django import storage, trace
from kolo_django.conf import get_config
from kolo_django.models import Trace

SUBCOMMANDS = ("list", "show", "delete", "prune", "export", "import")
STATUS_RE = re.compile(r"^([1-5])(xx|\d\d)$", re.IGNORECASE)
SQL_WIDTH = 120


class Command(BaseCommand):
    help = (
        "List, show, delete, prune, export and import recorded kolo_django traces. "
        "Without a subcommand, lists the newest traces."
    )
    # call_command(..., stdin=StringIO(...)) feeds ``import -``.
    stealth_options = ("stdin",)

    def add_arguments(self, parser: CommandParser) -> None:
        # The bare command means ``list``, so the list options live on the
        # main parser too; the subparser's copies default to SUPPRESS so they
        # never overwrite a value given before the subcommand.
        _add_list_options(parser, defaults=True)
        subparsers = parser.add_subparsers(dest="subcommand", metavar="SUBCOMMAND")

        list_parser = subparsers.add_parser("list", help="List traces, newest first (default).")
        _add_list_options(list_parser, defaults=False)

        show = subparsers.add_parser("show", help="Summarise one trace.")
        show.add_argument("trace_id", metavar="TRACE_ID")
        show.add_argument(
            "--json",
            action="store_true",
            dest="as_json",
            default=argparse.SUPPRESS,
            help="Print the whole document as indented JSON.",
        )

        delete = subparsers.add_parser("delete", help="Delete traces by id.")
        delete.add_argument("trace_ids", nargs="+", metavar="TRACE_ID")

        prune = subparsers.add_parser("prune", help="Delete traces beyond the retention limits.")
        prune.add_argument(
            "--max-traces",
            type=int,
            metavar="N",
            help="Keep the newest N traces (default: RETENTION_MAX_TRACES).",
        )
        prune.add_argument(
            "--max-age-days",
            type=float,
            metavar="D",
            help="Delete traces older than D days (default: RETENTION_MAX_AGE_DAYS).",
        )

        export = subparsers.add_parser("export", help="Write traces as JSON lines.")
        export.add_argument(
            "trace_ids",
            nargs="*",
            metavar="TRACE_ID",
            help="Traces to export (default: all, oldest first).",
        )
        export.add_argument(
            "-o", "--output", metavar="FILE", help="Write to FILE instead of stdout."
        )

        import_ = subparsers.add_parser("import", help="Store traces from a JSON lines file.")
        import_.add_argument("file", metavar="FILE", help='A JSON lines file, or "-" for stdin.')

        for sub in (list_parser, show, delete, prune, export, import_):
            # Django adds --verbosity to the main parser only; accept it after
            # the subcommand as well.
            sub.add_argument(
                "-v",
                "--verbosity",
                type=int,
                choices=[0, 1, 2, 3],
                default=argparse.SUPPRESS,
                help="0 = quiet, 1 = normal output, 2 = more detail.",
            )

    def handle(
        self,
        *args: Any,
        subcommand: str | None = None,
        count: int = 20,
        as_json: bool = False,
        method: str | None = None,
        status: str | None = None,
        path_contains: str | None = None,
        trace_id: str = "",
        trace_ids: list[str] | None = None,
        max_traces: int | None = None,
        max_age_days: float | None = None,
        output: str | None = None,
        file: str = "",
        stdin: IO[Any] | None = None,
        verbosity: int = 1,
        **options: Any,
    ) -> None:
        self.verbosity = verbosity
        try:
            if subcommand in (None, "list"):
                self.list_traces(
                    count=count,
                    as_json=as_json,
                    method=method,
                    status=status,
                    path_contains=path_contains,
                )
            elif subcommand == "show":
                self.show(trace_id, as_json=as_json)
            elif subcommand == "delete":
                self.delete(trace_ids or [])
            elif subcommand == "prune":
                self.prune(max_traces=max_traces, max_age_days=max_age_days)
            elif subcommand == "export":
                self.export(trace_ids or [], output=output)
            elif subcommand == "import":
                self.import_file(file, stdin=stdin)
            else:
                raise CommandError(
                    f"unknown subcommand {subcommand!r} (choose from {', '.join(SUBCOMMANDS)})"
                )
        except DatabaseError as exc:
            first_line = (
                str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            )
            raise CommandError(
                f"database error: {first_line} (has `manage.py migrate` been run?)"
            ) from exc

    # --- list --------------------------------------------------------------------------

    def list_traces(
        self,
        *,
        count: int,
        as_json: bool,
        method: str | None,
        status: str | None,
        path_contains: str | None,
    ) -> None:
        if count < 1:
            raise CommandError(f"--count must be at least 1, not {count}")
        queryset = storage.listing()
        if method:
            queryset = queryset.filter(method=method.upper())
        if status:
            queryset = queryset.filter(**_status_filter(status))
        if path_contains:
            queryset = queryset.filter(path__icontains=path_contains)
        rows = list(queryset.order_by("-created_at", "-id")[:count])
        if as_json:
            data = [_summary(obj) for obj in rows]
            self.stdout.write(json.dumps(data, indent=2, ensure_ascii=False))
            return
        if self.verbosity == 0:
            for obj in rows:
                self.stdout.write(obj.id)
            return
        if not rows:
            self.stdout.write("No traces.")
            return
        headers = ["id", "created", "method", "status", "ms", "queries", "size", "path"]
        if self.verbosity >= 2:
            headers[-1:-1] = ["events", "view"]
        table = [headers]
        for obj in rows:
            cells = [
                obj.id,
                _local_time(obj.created_at),
                obj.method,
                "-" if obj.status_code is None else str(obj.status_code),
                f"{obj.duration_ms:.1f}",
                str(obj.query_count),
                _human_size(obj.size),
                obj.path,
            ]
            if self.verbosity >= 2:
                cells[-1:-1] = [str(obj.event_count), obj.view_name or "-"]
            table.append(cells)
        numeric = {"status", "ms", "queries", "size", "events"}
        widths = [max(len(row[i]) for row in table) for i in range(len(headers))]
        for row in table:
            cells = [
                cell.rjust(width) if headers[i] in numeric else cell.ljust(width)
                for i, (cell, width) in enumerate(zip(row, widths, strict=True))
            ]
            self.stdout.write("  ".join(cells).rstrip())

    # --- show --------------------------------------------------------------------------

    def show(self, trace_id: str, *, as_json: bool) -> None:
        document = _load(trace_id)
        if as_json:
            self.stdout.write(json.dumps(document, indent=2, ensure_ascii=False))
            return
        try:
            lines = list(_describe(document, full_sql=self.verbosity >= 2))
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise CommandError(
                f"trace {trace_id}: the document is malformed ({type(exc).__name__}: {exc})"
            ) from None
        for line in lines:
            self.stdout.write(line)

    # --- delete ------------------------------------------------------------------------

    def delete(self, trace_ids: list[str]) -> None:
        ids = _unique(trace_ids)
        _check_ids(ids)
        with transaction.atomic(using=storage.alias()):
            queryset = Trace.objects.using(storage.alias()).filter(id__in=ids)
            missing = sorted(set(ids) - set(queryset.values_list("id", flat=True)))
            if missing:
                raise CommandError(f"no trace with id {', '.join(missing)}; nothing was deleted")
            deleted, _ = queryset.delete()
        if self.verbosity >= 1:
            self.stdout.write(f"Deleted {_plural(deleted, 'trace')}.")

    # --- prune -------------------------------------------------------------------------

    def prune(self, *, max_traces: int | None, max_age_days: float | None) -> None:
        if max_traces is not None and max_traces < 1:
            raise CommandError(f"--max-traces must be at least 1, not {max_traces}")
        if max_age_days is not None and not _positive_days(max_age_days):
            raise CommandError(f"--max-age-days must be a number above 0, not {max_age_days}")
        config = get_config()
        if max_traces is None:
            max_traces = config["RETENTION_MAX_TRACES"]
        if max_age_days is None:
            max_age_days = config["RETENTION_MAX_AGE_DAYS"]
            # The settings check accepts any number here; refuse the ones that
            # would delete every trace or make the cutoff date overflow.
            if max_age_days is not None and not _positive_days(max_age_days):
                raise CommandError(
                    f"RETENTION_MAX_AGE_DAYS must be a number above 0, not {max_age_days!r}; "
                    "nothing was deleted"
                )
        if max_traces is None and max_age_days is None:
            if self.verbosity >= 1:
                self.stdout.write(
                    "No retention limit is set (RETENTION_MAX_TRACES and "
                    "RETENTION_MAX_AGE_DAYS are None); nothing was deleted."
                )
            return
        deleted = storage.prune(max_traces=max_traces, max_age_days=max_age_days)
        if self.verbosity >= 1:
            self.stdout.write(f"Deleted {_plural(deleted, 'trace')}.")

    # --- export ------------------------------------------------------------------------

    def export(self, trace_ids: list[str], *, output: str | None) -> None:
        ids = _unique(trace_ids)
        if ids:
            _check_ids(ids)
            stored = set(
                Trace.objects.using(storage.alias()).filter(id__in=ids).values_list("id", flat=True)
            )
            missing = [i for i in ids if i not in stored]
            if missing:
                raise CommandError(f"no trace with id {', '.join(missing)}; nothing was exported")
        to_stdout = output in (None, "-")
        failed: list[str] = []
        written = 0
        with self._export_target(None if to_stdout else output) as write:
            for obj in _export_queryset(ids):
                try:
                    document = obj.load_document()
                except trace.TraceFormatError as exc:
                    self.stderr.write(f"trace {obj.id}: {exc}; not exported")
                    failed.append(obj.id)
                    continue
                write(json.dumps(document, separators=(",", ":"), ensure_ascii=False))
                written += 1
        if self.verbosity >= 1 and not to_stdout:
            self.stdout.write(f"Exported {_plural(written, 'trace')} to {output}.")
        elif self.verbosity >= 2:
            self.stderr.write(f"Exported {_plural(written, 'trace')}.")
        if failed:
            raise CommandError(
                f"{_plural(len(failed), 'trace')} could not be exported: {', '.join(failed)}"
            )

    @contextlib.contextmanager
    def _export_target(self, path: str | None) -> Iterator[Any]:
        if path is None:
            yield self.stdout.write
            return
        # Write beside the target and rename, so a failed export never leaves
        # a half-written file in place of a previous one.
        directory = os.path.dirname(os.path.abspath(path))
        try:
            handle, temp_path = tempfile.mkstemp(prefix=".kolo_export_", dir=directory)
        except OSError as exc:
            raise CommandError(f"cannot write {path}: {exc.strerror or exc}") from None
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                yield lambda line: stream.write(line + "\n")
            os.replace(temp_path, path)
        except OSError as exc:
            raise CommandError(f"cannot write {path}: {exc.strerror or exc}") from None
        finally:
            if os.path.exists(temp_path):
                os.unlink(temp_path)

    # --- import ------------------------------------------------------------------------

    def import_file(self, path: str, *, stdin: IO[Any] | None) -> None:
        if path == "-":
            stream = stdin if stdin is not None else sys.stdin
            self._import_lines(getattr(stream, "buffer", stream), source="stdin")
            return
        try:
            with open(path, "rb") as stream:
                self._import_lines(stream, source=path)
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc.strerror or exc}") from None

    def _import_lines(self, lines: Iterable[str | bytes], *, source: str) -> None:
        imported = skipped = 0
        failed: list[int] = []
        stored = Trace.objects.using(storage.alias())
        for number, raw in enumerate(lines, start=1):
            text = _decode_line(raw)
            if text is not None and not text.strip():
                continue
            trace_id = ""
            try:
                if text is None:
                    raise trace.TraceFormatError("the line is not UTF-8 text")
                trace_id = _line_trace_id(text)
                if not stored.filter(id=trace_id).exists():
                    storage.import_line(text)
                    imported += 1
                    if self.verbosity >= 2:
                        self.stdout.write(f"line {number}: imported {trace_id}")
                    continue
            except (OperationalError, ProgrammingError):
                raise  # the database itself is unusable: stop here
            except Exception as exc:  # one bad line must not stop the others
                # A concurrent import may have stored the same id meanwhile.
                if not (isinstance(exc, IntegrityError) and stored.filter(id=trace_id).exists()):
                    failed.append(number)
                    self.stderr.write(f"line {number}: {_one_line(exc)}")
                    continue
            skipped += 1
            if self.verbosity >= 1:
                self.stdout.write(f"line {number}: {trace_id} is already stored; skipped")
        if self.verbosity >= 1:
            self.stdout.write(
                f"Imported {_plural(imported, 'trace')} from {source}, "
                f"skipped {skipped} already stored, {len(failed)} failed."
            )
        if failed:
            shown = ", ".join(str(n) for n in failed[:20]) + (", …" if len(failed) > 20 else "")
            raise CommandError(
                f"{_plural(len(failed), 'line')} of {source} could not be imported (line {shown})"
            )


# --- helpers ---------------------------------------------------------------------------


def _add_list_options(parser: CommandParser, *, defaults: bool) -> None:
    def default(value: Any) -> Any:
        return value if defaults else argparse.SUPPRESS

    parser.add_argument(
        "--count",
        type=int,
        default=default(20),
        metavar="N",
        help="How many traces to list (default 20).",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        dest="as_json",
        default=default(False),
        help="Print a JSON array instead of a table.",
    )
    parser.add_argument(
        "--method", default=default(None), metavar="M", help="Only this HTTP method."
    )
    parser.add_argument(
        "--status",
        default=default(None),
        metavar="CODE",
        help="Only this status code (404) or class (2xx).",
    )
    parser.add_argument(
        "--path-contains",
        default=default(None),
        metavar="S",
        help="Only paths containing S (case-insensitive).",
    )


def _positive_days(days: float) -> bool:
    return isinstance(days, (int, float)) and math.isfinite(days) and days > 0


def _status_filter(status: str) -> dict[str, Any]:
    match = STATUS_RE.match(status.strip())
    if match is None:
        raise CommandError(
            f"--status must be a status code such as 404 or a class such as 2xx, not {status!r}"
        )
    if match.group(2).lower() == "xx":
        low = int(match.group(1)) * 100
        return {"status_code__gte": low, "status_code__lte": low + 99}
    return {"status_code": int(status)}


def _summary(obj: Trace) -> dict[str, Any]:
    return {
        "id": obj.id,
        "created_at": obj.created_at.isoformat(),
        "method": obj.method,
        "path": obj.path,
        "status_code": obj.status_code,
        "view_name": obj.view_name,
        "duration_ms": obj.duration_ms,
        "query_count": obj.query_count,
        "event_count": obj.event_count,
        "size": obj.size,
        "schema_version": obj.schema_version,
    }


def _local_time(value: Any) -> str:
    if timezone.is_aware(value):
        value = timezone.localtime(value)
    return value.strftime("%Y-%m-%d %H:%M:%S")


def _human_size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KiB"
    return f"{size / (1024 * 1024):.1f} MiB"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


def _check_ids(ids: list[str]) -> None:
    malformed = [i for i in ids if not trace.is_trace_id(i)]
    if malformed:
        shown = ", ".join(repr(i) for i in malformed)
        verb = "is not a trace id" if len(malformed) == 1 else "are not trace ids"
        raise CommandError(f"{shown} {verb} (expected trc_ followed by 26 characters)")


def _load(trace_id: str) -> dict[str, Any]:
    try:
        return storage.load(trace_id)
    except (LookupError, trace.TraceFormatError) as exc:
        raise CommandError(str(exc)) from None


def _export_queryset(ids: list[str]) -> Iterator[Trace]:
    queryset = Trace.objects.using(storage.alias())
    if ids:
        by_id = {obj.id: obj for obj in queryset.filter(id__in=ids)}
        # An id deleted since it was checked is left out.
        yield from (by_id[trace_id] for trace_id in ids if trace_id in by_id)
        return
    yield from queryset.order_by("created_at", "id").iterator(chunk_size=200)


def _decode_line(raw: str | bytes) -> str | None:
    if isinstance(raw, str):
        return raw
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _line_trace_id(text: str) -> str:
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise trace.TraceFormatError(f"not JSON ({exc})") from None
    if not isinstance(document, dict):
        raise trace.TraceFormatError("not a trace document (expected a JSON object)")
    document = trace.upgrade(document)
    trace_id = document.get("id")
    if not isinstance(trace_id, str) or not trace.is_trace_id(trace_id):
        raise trace.TraceFormatError(f"the document has no valid trace id ({trace_id!r})")
    if not isinstance(document.get("request"), dict) or not isinstance(
        document.get("events"), list
    ):
        raise trace.TraceFormatError(f"{trace_id} lacks a request object or an events list")
    return trace_id


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if isinstance(exc, trace.TraceFormatError):
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _short_sql(sql: str, full: bool) -> str:
    text = " ".join(str(sql).split())
    if full or len(text) <= SQL_WIDTH:
        return text
    return text[: SQL_WIDTH - 1] + "…"


def _describe(document: dict[str, Any], *, full_sql: bool) -> Iterator[str]:
    """The readable summary printed by ``show``."""
    request = document.get("request") or {}
    response = document.get("response") or {}
    events = [e for e in document.get("events") or [] if isinstance(e, dict)]

    target = str(request.get("path") or "")
    if request.get("query_string"):
        target += "?" + str(request["query_string"])
    yield f"{document.get('id')}  {request.get('method') or '?'} {target}"

    status = response.get("status_code")
    status_line = f"{status} {response.get('reason') or ''}".rstrip() if status else "-"
    if response.get("redirect"):
        status_line += f" -> {response['redirect']}"
    resolver = request.get("resolver") or {}
    view = resolver.get("view") or "-"
    if resolver.get("view_name"):
        view += f" ({resolver['view_name']})"
    started = trace.decode_value(document.get("started_at"))
    user = request.get("user") or {}
    if user.get("authenticated"):
        who = (
            f"{user.get('username')} ({user.get('model')} pk={trace.decode_value(user.get('pk'))})"
        )
    else:
        who = "anonymous"

    fields = [
        ("Status", status_line),
        ("View", view),
        ("Started", _local_time(started) if hasattr(started, "strftime") else str(started)),
        ("Duration", f"{float(document.get('duration_ms') or 0):.1f} ms"),
        ("User", who),
    ]
    counts = Counter(str(e.get("type")) for e in events)
    if counts:
        listed = ", ".join(f"{kind} {n}" for kind, n in sorted(counts.items(), key=_by_count))
        fields.append(("Events", f"{len(events)}: {listed}"))
    else:
        fields.append(("Events", "0"))
    if document.get("dropped_events"):
        fields.append(("Dropped", f"{document['dropped_events']} events (MAX_EVENTS reached)"))
    if document.get("faults"):
        fields.append(("Faults", ", ".join(str(f) for f in document["faults"])))
    for label, value in fields:
        yield f"  {label:<9} {value}"

    sql = [e for e in events if e.get("type") == "sql"]
    if sql:
        yield ""
        yield f"SQL ({len(sql)})"
        for event in sql:
            timing = f"{float(event.get('duration_ms') or 0):.2f} ms"
            error = f"  !! {event['error']}" if event.get("error") else ""
            line = _short_sql(event.get("sql", ""), full_sql)
            yield f"  [{event.get('origin', '?')} {timing}] {line}{error}"

    http = [e for e in events if e.get("type") == "http"]
    if http:
        yield ""
        yield f"HTTP ({len(http)})"
        for event in http:
            outcome = event.get("error") or event.get("status") or "?"
            yield (
                f"  {event.get('method')} {event.get('url')} -> {outcome} "
                f"({float(event.get('duration_ms') or 0):.1f} ms, {event.get('library')})"
            )

    mail = [e for e in events if e.get("type") == "mail"]
    if mail:
        yield ""
        yield f"Mail ({len(mail)})"
        for event in mail:
            recipients = ", ".join(str(a) for a in event.get("to") or []) or "-"
            yield f"  {event.get('subject')!r} from {event.get('from_email')} to {recipients}"

    exception = document.get("exception")
    if exception:
        yield ""
        yield "Exception"
        message = " ".join(str(exception.get("message") or "").split())
        yield f"  {exception.get('type')}: {message}"


def _by_count(item: tuple[str, int]) -> tuple[int, str]:
    return (-item[1], item[0])
