"""Writing, reading and pruning stored traces, on the configured database alias."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

from django.db import transaction
from django.utils import timezone

from . import trace
from .conf import get_config
from .models import Trace


def alias() -> str:
    return str(get_config()["DATABASE_ALIAS"])


def summary_fields(document: dict[str, Any]) -> dict[str, Any]:
    request = document.get("request") or {}
    response = document.get("response") or {}
    events = document.get("events") or []
    return {
        "method": str(request.get("method") or "")[:10],
        "path": str(request.get("path") or "")[:1024],
        "status_code": response.get("status_code"),
        "view_name": str((request.get("resolver") or {}).get("view_name") or "")[:255],
        "duration_ms": float(document.get("duration_ms") or 0),
        "query_count": sum(1 for e in events if e.get("type") == "sql"),
        "event_count": len(events),
    }


def save_document(document: dict[str, Any]) -> Trace:
    """Store one document. Runs in its own transaction on the traces' alias so
    it survives a rolled-back request transaction."""
    data = trace.dumps(document)
    started = trace.decode_value(document.get("started_at"))
    created_at = started if isinstance(started, dt.datetime) else timezone.now()
    obj = Trace(
        id=document["id"],
        created_at=created_at,
        schema_version=document.get("schema_version", trace.SCHEMA_VERSION),
        size=len(data),
        document=data,
        **summary_fields(document),
    )
    with transaction.atomic(using=alias()):
        obj.save(using=alias(), force_insert=True)
    return obj


def listing() -> Any:
    """Traces newest first, without their documents."""
    return Trace.objects.using(alias()).defer("document")


def get_trace(trace_id: str) -> Trace:
    """Raises ``LookupError`` with a one-line reason."""
    if not trace.is_trace_id(trace_id):
        raise LookupError(
            f"{trace_id!r} is not a trace id (expected trc_ followed by 26 characters)"
        )
    try:
        return Trace.objects.using(alias()).get(pk=trace_id)
    except Trace.DoesNotExist:
        raise LookupError(f"no trace with id {trace_id}") from None


def load(trace_id: str) -> dict[str, Any]:
    """The document of a stored trace; ``LookupError`` or ``TraceFormatError``."""
    obj = get_trace(trace_id)
    try:
        return obj.load_document()
    except trace.TraceFormatError as exc:
        raise trace.TraceFormatError(f"trace {trace_id}: {exc}") from None


def prune(
    *,
    max_traces: int | None = None,
    max_age_days: float | None = None,
    batch_size: int | None = None,
) -> int:
    """Delete traces beyond the retention limits in batches; returns how many."""
    config = get_config()
    if max_traces is None:
        max_traces = config["RETENTION_MAX_TRACES"]
    if max_age_days is None:
        max_age_days = config["RETENTION_MAX_AGE_DAYS"]
    batch = batch_size or config["PRUNE_BATCH_SIZE"]
    queryset = Trace.objects.using(alias())
    deleted = 0
    if max_age_days is not None:
        cutoff = timezone.now() - dt.timedelta(days=max_age_days)
        deleted += _delete_in_batches(queryset.filter(created_at__lt=cutoff), batch)
    if max_traces is not None:
        # The newest max_traces are kept; everything older goes.
        boundary = queryset.order_by("-created_at", "-id").values_list("created_at", "id")[
            max_traces : max_traces + 1
        ]
        row = next(iter(boundary), None)
        if row is not None:
            created_at, trace_id = row
            older = queryset.filter(created_at__lt=created_at) | queryset.filter(
                created_at=created_at, id__lte=trace_id
            )
            deleted += _delete_in_batches(older, batch)
    return deleted


def _delete_in_batches(queryset: Any, batch: int) -> int:
    """Oldest first, ``batch`` ids at a time: memory and lock time stay bounded
    however many traces go."""
    using = alias()
    deleted = 0
    while True:
        ids = list(queryset.order_by("created_at", "id").values_list("id", flat=True)[:batch])
        if not ids:
            return deleted
        # A plain DELETE: QuerySet.delete() would load every row, documents
        # included, to send signals nobody needs for traces.
        count = Trace.objects.using(using).filter(id__in=ids)._raw_delete(using)
        deleted += count or 0


def export_lines(queryset: Any) -> Iterator[str]:
    """JSON lines: one document per line, with its id."""
    for obj in queryset.iterator(chunk_size=200):
        try:
            document = obj.load_document()
        except trace.TraceFormatError:
            continue
        yield json.dumps(document, separators=(",", ":"), ensure_ascii=False)


def import_line(line: str) -> Trace:
    try:
        document = trace.upgrade(json.loads(line))
    except ValueError as exc:
        raise trace.TraceFormatError(f"not a trace document: {exc}") from None
    if not trace.is_trace_id(str(document.get("id", ""))):
        raise trace.TraceFormatError("the document has no valid id")
    return save_document(document)
