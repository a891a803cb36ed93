"""The rows a traced request read and wrote, keyed by model and primary key."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.apps import apps
from django.db import models

from ..trace import decode_value

# Rows that migrations create, or that are bookkeeping: never seeded.
NEVER_SEEDED = {
    "contenttypes.contenttype",
    "auth.permission",
    "sessions.session",
    "admin.logentry",
    "kolo_django.trace",
    "migrations.migration",
}


def get_model(label: str) -> type[models.Model] | None:
    try:
        return apps.get_model(label)
    except (LookupError, ValueError):
        return None


def pk_key(value: Any) -> str:
    """A hashable, type-insensitive key for a primary key value."""
    return str(decode_value(value))


@dataclass
class Row:
    """One recorded row: the stored values of the fields that were read."""

    model: type[models.Model]
    alias: str
    pk: Any
    values: dict[str, Any] = field(default_factory=dict)
    sources: set[str] = field(default_factory=set)
    trace_index: int = 0

    @property
    def label(self) -> str:
        return self.model._meta.label_lower

    @property
    def key(self) -> tuple[str, str]:
        return (self.label, pk_key(self.pk))


@dataclass
class Write:
    op: str
    model: type[models.Model]
    alias: str
    pk: Any
    values: dict[str, Any]
    event: dict[str, Any]
    trace_index: int

    @property
    def key(self) -> tuple[str, str]:
        return (self.model._meta.label_lower, pk_key(self.pk))


@dataclass
class RowSet:
    rows: dict[tuple[str, str], Row] = field(default_factory=dict)
    writes: list[Write] = field(default_factory=list)
    missing_models: set[str] = field(default_factory=set)
    missing_fields: set[str] = field(default_factory=set)

    def created_keys(self) -> dict[tuple[str, str], int]:
        """Rows a traced request created, with the index of that request."""
        created: dict[tuple[str, str], int] = {}
        for write in self.writes:
            if write.op == "create":
                created.setdefault(write.key, write.trace_index)
        return created


def collect(documents: list[dict[str, Any]]) -> RowSet:
    rowset = RowSet()
    for index, document in enumerate(documents):
        for event in document.get("events") or ():
            kind = event.get("type")
            if kind == "orm":
                _add_rows(rowset, event, index)
            elif kind == "write":
                _add_write(rowset, event, index)
    return rowset


def _add_rows(rowset: RowSet, event: dict[str, Any], index: int) -> None:
    model = get_model(event.get("model", ""))
    if model is None:
        rowset.missing_models.add(event.get("model", "?"))
        return
    names = event.get("fields") or []
    known = {f.attname for f in model._meta.concrete_fields}
    for name in names:
        if name not in known:
            rowset.missing_fields.add(f"{model._meta.label}.{name}")
    pk_name = model._meta.pk.attname
    if pk_name in names:
        pk_at: int | None = names.index(pk_name)
    elif model._meta.auto_created:
        # M2M links read by a join carry no id of their own: keyed by the two ids.
        pk_at = None
    else:
        return
    for values in event.get("rows") or ():
        pk = values[pk_at] if pk_at is not None else None
        ident = pk_key(pk) if pk_at is not None else "|".join(pk_key(v) for v in values)
        key = (model._meta.label_lower, ident)
        row = rowset.rows.get(key)
        if row is None:
            row = rowset.rows[key] = Row(
                model,
                event.get("alias", "default"),
                decode_value(pk) if pk_at is not None else None,
                trace_index=index,
            )
        row.sources.add(event.get("source", "query"))
        for name, value in zip(names, values, strict=False):
            # The first read wins: it is the state before the request's writes.
            if name in known and name not in row.values:
                row.values[name] = value


def _add_write(rowset: RowSet, event: dict[str, Any], index: int) -> None:
    model = get_model(event.get("model", ""))
    if model is None:
        rowset.missing_models.add(event.get("model", "?"))
        return
    rowset.writes.append(
        Write(
            op=event.get("op", ""),
            model=model,
            alias=event.get("alias", "default"),
            pk=decode_value(event.get("pk")),
            values=event.get("values") or {},
            event=event,
            trace_index=index,
        )
    )
