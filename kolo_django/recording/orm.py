"""ORM capture: every model instance the ORM builds, and the rows behind
queries that build none (aggregates, ``exists()``, ``values()``, raw SQL).

The second part is what lets generation reproduce a view that only counts:
before such a query runs, the same FROM/WHERE is asked for the full rows of
each table it touches (bounded by ``MAX_BACKING_ROWS``), with nothing of it
recorded as SQL.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from types import SimpleNamespace
from typing import Any

from django.apps import apps
from django.db.models import Model
from django.db.models.sql.constants import MULTI

from ..trace import encode_value
from .recorder import Recorder, current, fault
from .redact import DB_SECRET_MIN, REDACTED, collect, is_secret_key

logger = logging.getLogger("kolo_django")


@lru_cache(maxsize=1)
def table_models() -> dict[str, type[Model]]:
    models: dict[str, type[Model]] = {}
    for model in apps.get_models(include_auto_created=True):
        if not model._meta.proxy and model._meta.managed is not None:
            models.setdefault(model._meta.db_table, model)
    return models


def field_value(field: Any, obj: Any, value: Any) -> Any:
    encoded = encode_value(value)
    if isinstance(encoded, dict) and encoded.get("$t") == "repr":
        # A custom field's Python type: keep Django's own string form, which
        # the field's to_python() reads back.
        try:
            holder = obj if obj is not None else SimpleNamespace(**{field.attname: value})
            return {"$t": "field", "v": field.value_to_string(holder)}
        except Exception:
            return encoded
    return encoded


def _group(
    recorder: Recorder, model: type[Model], alias: str, source: str, fields: tuple[str, ...]
) -> dict[str, Any] | None:
    key = (model, alias, source, fields)
    event = recorder.orm_groups.get(key)
    if event is None:
        event = recorder.add(
            {
                "type": "orm",
                "model": model._meta.label_lower,
                "alias": alias,
                "source": source,
                "fields": list(fields),
                "rows": [],
            }
        )
        if event is not None:
            recorder.orm_groups[key] = event
    return event


def max_rows(recorder: Recorder) -> int:
    """Rows kept per ``orm`` event: enough to seed what a page shows, and
    bounded when a view walks a whole table."""
    config = recorder.config
    return max(int(config["MAX_ROWS_PER_QUERY"]), int(config["MAX_BACKING_ROWS"]))


def _room(recorder: Recorder, event: dict[str, Any]) -> bool:
    """Whether the event may take one more row; counts the ones it may not."""
    if len(event["rows"]) < max_rows(recorder):
        return True
    event["rows_truncated"] = True
    event["rows_dropped"] = event.get("rows_dropped", 0) + 1
    return False


def _secret(recorder: Recorder, value: Any) -> str:
    # Hidden here, and scrubbed wherever else it went (SQL params, locals...).
    collect(value, recorder.secrets, DB_SECRET_MIN)
    return REDACTED


def record_instance(recorder: Recorder, obj: Model, alias: str) -> None:
    meta = obj._meta
    values = obj.__dict__
    fields = tuple(f.attname for f in meta.concrete_fields if f.attname in values)
    source = "backing" if recorder.mode == "backing" else "query"
    event = _group(recorder, type(obj), alias, source, fields)
    if event is None or not _room(recorder, event):
        return
    row = []
    for field in meta.concrete_fields:
        name = field.attname
        if name in values:
            row.append(
                _secret(recorder, values[name])
                if is_secret_key(name)
                else field_value(field, obj, values[name])
            )
    event["rows"].append(row)


def install_from_db() -> None:
    if getattr(Model.from_db, "_kolo_django", False):
        return
    original = Model.from_db.__func__

    def from_db(cls: type[Model], db: str, *args: Any, **kwargs: Any) -> Model:
        # Django 6.1 added keyword arguments (fetch_mode): pass everything on.
        obj = original(cls, db, *args, **kwargs)
        recorder = current()
        if recorder is not None and recorder.mode != "silent":
            try:
                with recorder.own_work():
                    record_instance(recorder, obj, db)
            except Exception:
                fault("orm", recorder, "a model row")
        return obj

    from_db._kolo_django = True  # type: ignore[attr-defined]
    Model.from_db = classmethod(from_db)  # type: ignore[assignment,method-assign]


def record_query_backing_rows(query: Any, using: str, *, include_base: bool) -> None:
    """Rows of each table a query reads, under the same FROM/WHERE."""
    recorder = current()
    if recorder is None or recorder.mode is not None or query.combinator:
        return
    limit = recorder.config["MAX_BACKING_ROWS"]
    if not limit:
        return
    models = table_models()
    if not query.alias_map:
        # ``Model.objects.count()`` and the like: the base table joins the
        # query only when it is compiled, after this point.
        query = query.clone()
        query.get_initial_alias()
    with recorder.in_mode("backing"):
        for table_alias, join in list(query.alias_map.items()):
            is_base = table_alias == query.base_table
            if (is_base and not include_base) or not (
                is_base or query.alias_refcount.get(table_alias)
            ):
                continue
            model = models.get(join.table_name)
            if model is None:
                continue
            try:
                sub = query.clone()
                sub.clear_ordering(force=True)
                sub.clear_select_clause()
                sub.group_by = None
                sub.distinct = False
                sub.select = tuple(f.get_col(table_alias) for f in model._meta.concrete_fields)
                # Relative to any slice the query has, and clamped to it.
                sub.set_limits(high=limit)
                _record_rows(recorder, model, using, sub)
            except Exception as exc:
                logger.debug("kolo_django: no backing rows for %s (%s)", model, exc)
                _snapshot_table(recorder, model, using, limit)


def _record_rows(recorder: Recorder, model: type[Model], using: str, query: Any) -> None:
    compiler = query.get_compiler(using=using)
    fields = model._meta.concrete_fields
    names = tuple(f.attname for f in fields)
    event = _group(recorder, model, using, "backing", names)
    if event is None:
        return
    for row in compiler.results_iter(compiler.execute_sql(MULTI)):
        if not _room(recorder, event):
            break
        event["rows"].append(
            [
                _secret(recorder, value)
                if is_secret_key(f.attname)
                else field_value(f, None, value)
                for f, value in zip(fields, row, strict=False)
            ]
        )


def _snapshot_table(recorder: Recorder, model: type[Model], using: str, limit: int) -> None:
    try:
        query = model._base_manager.db_manager(using).all()[:limit].query
        sub = query.clone()
        sub.clear_ordering(force=True)
        sub.clear_select_clause()
        sub.select = tuple(
            f.get_col(query.get_initial_alias()) for f in model._meta.concrete_fields
        )
        _record_rows(recorder, model, using, sub)
    except Exception:
        fault("backing rows", recorder, f"the backing rows of {model._meta.label}")


def record_raw_backing_rows(recorder: Recorder, using: str, sql: str) -> None:
    from .sqltables import tables_in

    limit = recorder.config["MAX_BACKING_ROWS"]
    if not limit:
        return
    models = table_models()
    with recorder.in_mode("backing"):
        for table in tables_in(sql):
            model = models.get(table)
            if model is not None:
                _snapshot_table(recorder, model, using, limit)
