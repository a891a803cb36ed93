"""ORM capture: every model instance the ORM builds, and the rows behind
queries that build none (aggregates, ``exists()``, ``values()``, raw SQL).

The second part is what lets generation reproduce a view that only counts:
the same FROM/WHERE is asked for the full rows of each table such a query
touches (bounded by ``MAX_BACKING_ROWS``), with nothing of it recorded as SQL.
That read waits until the data may change (before the next statement that may
write) or the request ends: by then the page's own rows are usually read, and
a row recorded already costs no conversion (a paginated list counts its table
before it reads its page).
"""

from __future__ import annotations

import logging
import operator
from functools import cache, lru_cache
from itertools import chain
from types import SimpleNamespace
from typing import Any

from django.apps import apps
from django.db.models import Model
from django.db.models.sql.constants import MULTI

from ..trace import UNKNOWN, encode_known
from . import recorder as recorder_module
from .recorder import Recorder, current, fault, unlogged
from .redact import DB_SECRET_MIN, REDACTED, collect, is_secret_key

logger = logging.getLogger("kolo_django")


@lru_cache(maxsize=1)
def table_models() -> dict[str, type[Model]]:
    models: dict[str, type[Model]] = {}
    for model in apps.get_models(include_auto_created=True):
        if not model._meta.proxy and model._meta.managed is not None:
            models.setdefault(model._meta.db_table, model)
    return models


_AS_IS = frozenset((type(None), bool, int, str))


def field_value(field: Any, obj: Any, value: Any) -> Any:
    if type(value) in _AS_IS:
        return value
    encoded = encode_known(value)
    if encoded is UNKNOWN:
        # A custom field's Python type: keep Django's own string form, which
        # the field's to_python() reads back.
        try:
            holder = obj if obj is not None else SimpleNamespace(**{field.attname: value})
            return {"$t": "field", "v": field.value_to_string(holder)}
        except Exception:
            return {"$t": "repr", "v": f"{type(value).__name__}: {str(value)[:200]}"}
    return encoded


@cache
def _field_plan(model: type[Model]) -> tuple[tuple[Any, str, bool], ...]:
    """(field, attname, secret?) of each concrete field: asked for every row."""
    return tuple((f, f.attname, is_secret_key(f.attname)) for f in model._meta.concrete_fields)


def reset_caches() -> None:
    _field_plan.cache_clear()
    _instance_plan.cache_clear()
    _link_fields.cache_clear()


def builds_instances(compiler: Any) -> bool:
    """Whether the rows of this compiler's query become model instances that
    ``from_db`` records as ``orm`` rows (so the ``sql`` event need not copy them)."""
    if compiler is None or compiler.annotation_col_map or compiler.query.extra_select:
        return False  # annotated values live on the instances, not in orm rows
    infos = [getattr(compiler, "klass_info", None)]
    while infos:
        info = infos.pop()
        if not info:
            return False
        if not getattr(info["model"].from_db, "_kolo_django", False):
            return False  # a model's own from_db() may not call ours
        infos.extend(info.get("related_klass_infos") or ())
    return True


def _row_key(model: type[Model], alias: str, pk: Any) -> Any:
    try:
        hash(pk)
    except TypeError:
        return None
    return (model, alias, pk)


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


def _room(recorder: Recorder, event: dict[str, Any]) -> bool:
    """Whether the event may take one more row; counts the ones it may not."""
    if len(event["rows"]) < recorder.max_rows:
        return True
    event["rows_truncated"] = True
    event["rows_dropped"] = event.get("rows_dropped", 0) + 1
    return False


def _secret(recorder: Recorder, value: Any) -> str:
    # Hidden here, and scrubbed wherever else it went (SQL params, locals...).
    collect(value, recorder.secrets, DB_SECRET_MIN)
    return REDACTED


@cache
def _instance_plan(model: type[Model]) -> tuple[Any, tuple[str, ...], bool]:
    """A getter of every concrete field's value from an instance's __dict__,
    the field names, and whether any of them is a secret."""
    plan = _field_plan(model)
    names = tuple(name for _f, name, _s in plan)
    getter = operator.itemgetter(*names) if len(names) > 1 else lambda d: (d[names[0]],)
    return getter, names, any(secret for _f, _n, secret in plan)


def _encoded_row(
    recorder: Recorder, plan: tuple[tuple[Any, str, bool], ...], raw: Any, obj: Any, secrets: bool
) -> tuple[Any, ...]:
    # Tuples: the collector stops tracking a tuple of plain values, so the
    # rows of a trace are not promoted into (and do not trigger) full collections.
    if not secrets:
        return tuple(
            [
                value if type(value) in _AS_IS else field_value(field, obj, value)
                for (field, _n, _s), value in zip(plan, raw, strict=True)
            ]
        )
    return tuple(
        [
            _secret(recorder, value) if secret else field_value(field, obj, value)
            for (field, _n, secret), value in zip(plan, raw, strict=True)
        ]
    )


def record_instance(recorder: Recorder, obj: Model, alias: str) -> None:
    model = type(obj)
    values = obj.__dict__
    # A row recorded whole already (the page's rows behind its count, the
    # same related row on every line): generation keeps the first read of a
    # row, so a repeat adds nothing.
    key = _row_key(model, alias, obj.pk)
    if key is not None and key in recorder.rows_seen:
        return
    plan = _field_plan(model)
    getter, names, secrets = _instance_plan(model)
    try:
        raw = getter(values)
        complete = True
    except KeyError:  # deferred fields: the ones loaded
        complete = False
        plan = tuple(item for item in plan if item[1] in values)
        names = tuple(name for _f, name, _s in plan)
        raw = tuple(values[name] for name in names)
    source = "backing" if recorder.mode == "backing" else "query"
    event = _group(recorder, model, alias, source, names)
    if event is None or not _room(recorder, event):
        return
    event["rows"].append(_encoded_row(recorder, plan, raw, obj, secrets))
    if complete and key is not None:
        recorder.rows_seen.add(key)


def install_from_db() -> None:
    if getattr(Model.from_db, "_kolo_django", False):
        return
    original = Model.from_db.__func__

    def from_db(cls: type[Model], db: str, *args: Any, **kwargs: Any) -> Model:
        # Django 6.1 added keyword arguments (fetch_mode): pass everything on.
        obj = original(cls, db, *args, **kwargs)
        recorder = current()
        if recorder is not None and recorder.mode != "silent":
            # The same related row on every line of a page: known already,
            # before any of the work below.
            try:
                if (type(obj), db, obj.pk) in recorder.rows_seen:
                    return obj
            except TypeError:  # an unhashable primary key: record_instance decides
                pass
            recorder.own_work_depth += 1
            recorder_module.pause_calls()
            try:
                record_instance(recorder, obj, db)
            except Exception:
                fault("orm", recorder, "a model row")
            finally:
                recorder_module.resume_calls()
                recorder.own_work_depth -= 1
        return obj

    from_db._kolo_django = True  # type: ignore[attr-defined]
    Model.from_db = classmethod(from_db)  # type: ignore[assignment,method-assign]


def record_query_backing_rows(
    query: Any, using: str, *, include_base: bool, first_only: bool = False
) -> LinkRows | None:
    """Rows of each table a query reads, under the same FROM/WHERE: one query
    selects the columns of every such table, so the rows kept of each come
    from the same joined rows. ``first_only`` (``exists()``): one joined row
    is all the query's answer depends on.

    An M2M manager's query (``todo.tags.all()``, or its prefetch) reads its
    link table only to join it: those links are the rows it returns, paired
    with the owner's id from its WHERE. They are returned as a :class:`LinkRows`
    to feed with the model instances, instead of being read by a query of
    their own; the N+1 loop of a page would otherwise double its queries.
    """
    recorder = current()
    if recorder is None or recorder.mode is not None or query.combinator:
        return None
    if not include_base and len(query.alias_map) < 2:
        return None  # no table joined: from_db records every row the query returns
    limit = recorder.config["MAX_BACKING_ROWS"]
    if not limit:
        return None
    models = table_models()
    if not query.alias_map:
        # ``Model.objects.count()`` and the like: the base table joins the
        # query only when it is compiled, after this point.
        query = query.clone()
        query.get_initial_alias()
    links = None if include_base else _link_rows(recorder, query, using)
    tables = []
    for table_alias, join in query.alias_map.items():
        is_base = table_alias == query.base_table
        if (is_base and not include_base) or not (is_base or query.alias_refcount.get(table_alias)):
            continue
        if links is not None and table_alias == links.table_alias:
            continue
        model = models.get(join.table_name)
        if model is not None and (model, using) not in recorder.whole_tables:
            # (Every row of a whole table is in the trace already.)
            tables.append((table_alias, model))
    if not tables:
        return links
    # No filter, join or slice: the rows of the whole table (up to the limit).
    whole = (
        not query.where
        and len(query.alias_map) == 1
        and not query.low_mark
        and query.high_mark is None
        and not first_only
    )
    sub = None
    with recorder.in_mode("backing"):
        try:
            # Built now: the caller's query may change before the read runs.
            sub = query.clone()
            sub.clear_ordering(force=True)
            sub.clear_select_clause()
            sub.group_by = None
            sub.distinct = False
            sub.select = tuple(
                f.get_col(table_alias)
                for table_alias, model in tables
                for f in model._meta.concrete_fields
            )
            # Relative to any slice the query has, and clamped to it.
            sub.set_limits(high=1 if first_only else limit)
        except Exception as exc:
            logger.debug("kolo_django: no backing query for %s (%s)", query.base_table, exc)
            sub = None
    recorder.backing_reads.append((using, sub, [m for _a, m in tables], limit, whole))
    return links


# Statements that change no row: the backing reads need not run before them.
# (A ROLLBACK TO SAVEPOINT undoes only writes, and every write ran them.)
KEEPS_ROWS = frozenset(("SELECT", "SAVEPOINT", "RELEASE", "ROLLBACK", "BEGIN", "COMMIT"))


def run_backing_reads(recorder: Recorder) -> None:
    """The backing reads waiting since their queries ran, in order: the
    data has not changed since (the recorder runs them before any statement
    that may write), and rows recorded since then are known by their id."""
    reads = recorder.backing_reads
    if not reads:
        return
    recorder.backing_reads = []
    whole_tables = recorder.whole_tables
    with recorder.in_mode("backing"):
        for using, sub, models, limit, whole in reads:
            if all((model, using) in whole_tables for model in models):
                continue  # every row of these tables is in the trace already
            try:
                if sub is None:
                    raise ValueError("the backing query could not be built")
                with unlogged(using):
                    if _record_rows(recorder, using, sub, models, limit) and whole:
                        whole_tables.add((models[0], using))
            except Exception as exc:
                logger.debug("kolo_django: no backing rows for %s (%s)", models, exc)
                for model in models:
                    _snapshot_table(recorder, model, using, limit)


class LinkRows:
    """The rows of an auto-created M2M table that a query over one side reads
    by an INNER JOIN, filtered by the other side's id: one per model instance
    the query returns."""

    def __init__(
        self,
        recorder: Recorder,
        table_alias: str,
        event: dict[str, Any],
        fields: tuple[Any, Any, Any],
        owner: Any,
        owner_attr: str | None,
        owner_first: bool,
    ) -> None:
        self.recorder = recorder
        self.owner_first = owner_first
        self.table_alias = table_alias
        self.event = event
        # (the link table's owner field, its field to the rows, the rows' field)
        self.owner_field, self.link_field, self.base_field = fields
        # The owner's id from an ``=`` filter, or per row from the attribute
        # an M2M prefetch selects it into.
        self.owner = owner
        self.owner_attr = owner_attr

    def add(self, obj: Any) -> None:
        values = obj.__dict__
        base = values.get(self.base_field.attname)
        owner = values.get(self.owner_attr) if self.owner_attr else self.owner
        recorder = self.recorder
        if base is None or owner is None or not _room(recorder, self.event):
            return
        if type(owner) in _AS_IS and type(base) in _AS_IS:
            pair = (owner, base)  # integer ids, nearly always: nothing to encode
        else:
            with recorder.own_work():
                pair = (
                    field_value(self.owner_field, None, owner),
                    field_value(self.link_field, None, base),
                )
        self.event["rows"].append(pair if self.owner_first else pair[::-1])


def _link_rows(recorder: Recorder, query: Any, using: str) -> LinkRows | None:
    """A :class:`LinkRows` for an M2M manager's query, or None for any other."""
    where = query.where
    if where.connector != "AND" or where.negated:
        return None
    base_alias = query.base_table
    for child in where.children:
        lhs = getattr(child, "lhs", None)
        lookup = getattr(child, "lookup_name", None)
        if lookup not in ("exact", "in") or type(lhs).__name__ != "Col":
            continue
        join = query.alias_map.get(lhs.alias)
        through = getattr(getattr(lhs.target, "model", None), "_meta", None)
        if (
            join is None
            or through is None
            or not through.auto_created
            or getattr(join, "parent_alias", None) != base_alias
            or join.join_type != "INNER JOIN"
            or len(join.join_cols) != 1
        ):
            continue
        fields = _link_fields(query.model, lhs.target, join.join_cols[0])
        if fields is None:
            continue
        owner_field, link_field, base_field, owner_first = fields
        if lookup == "exact":
            rhs = child.rhs
            if hasattr(rhs, "resolve_expression") or isinstance(rhs, Model):
                continue
            owner, owner_attr = rhs, None
        else:
            owner_attr = f"_prefetch_related_val_{owner_field.attname}"
            if owner_attr not in query.extra:
                continue
            owner = None
        if any(other is not child and _mentions(other, lhs.alias) for other in where.children):
            continue  # another condition on the link table: not just the join
        pair = (owner_field, link_field) if owner_first else (link_field, owner_field)
        event = _group(recorder, through.model, using, "backing", tuple(f.attname for f in pair))
        if event is None:
            return None
        return LinkRows(
            recorder,
            lhs.alias,
            event,
            (owner_field, link_field, base_field),
            owner,
            owner_attr,
            owner_first,
        )
    return None


@lru_cache(maxsize=256)
def _link_fields(
    model: type[Model], owner_field: Any, join_cols: tuple[str, str]
) -> tuple[Any, Any, Any, bool] | None:
    """(owner field, link field, the rows' field, owner first in the link
    table?) of a join from ``model`` to an M2M link table."""
    through = owner_field.model._meta
    base_column, link_column = join_cols
    base_field = next((f for f in model._meta.concrete_fields if f.column == base_column), None)
    link_field = next((f for f in through.concrete_fields if f.column == link_column), None)
    if base_field is None or link_field is None or owner_field is link_field:
        return None
    # The two ids in the link table's own field order.
    order = list(through.concrete_fields)
    return owner_field, link_field, base_field, order.index(owner_field) < order.index(link_field)


def _mentions(node: Any, table_alias: str) -> bool:
    try:
        return any(getattr(col, "alias", None) == table_alias for col in node.get_group_by_cols())
    except Exception:
        return True


def _record_rows(
    recorder: Recorder, using: str, query: Any, models: list[type[Model]], limit: int
) -> bool:
    """Record the rows of a query selecting every concrete field of each of
    ``models`` in turn; True when every row it has was read (fewer than
    ``limit``, none left out)."""
    compiler = query.get_compiler(using=using)
    connection = compiler.connection
    results = compiler.execute_sql(MULTI)
    # Django's converters (dates parsed from text, decimals...) run only on
    # the rows kept, and only on their own columns: a row recorded already is
    # known by its id alone.
    converters = compiler.get_converters([s[0] for s in compiler.select[: compiler.col_count]])
    segments = []
    at = 0
    for model in models:
        plan = _field_plan(model)
        event = _group(recorder, model, using, "backing", tuple(name for _f, name, _s in plan))
        if event is None:
            return False
        end = at + len(plan)
        pk_at = at + [name for _f, name, _s in plan].index(model._meta.pk.attname)
        columns = tuple(
            (pos - at, funcs, expression)
            for pos, (funcs, expression) in converters.items()
            if at <= pos < end
        )
        secrets = _instance_plan(model)[2]
        pk_converters = converters.get(pk_at)
        segments.append((model, plan, at, end, pk_at, pk_converters, columns, event, secrets))
        at = end
    seen = recorder.rows_seen
    read = 0
    for raw in chain.from_iterable(results):
        read += 1
        for model, plan, start, end, pk_at, pk_converters, columns, event, secrets in segments:
            pk = raw[pk_at]
            if pk_converters is not None:
                funcs, expression = pk_converters
                for func in funcs:
                    pk = func(pk, expression, connection)
            if pk is None:
                continue  # no row of this table joined (an outer join)
            # A row already recorded whole (the page's rows behind its count):
            # generation keeps the first read of a row, so a repeat adds nothing.
            key = _row_key(model, using, pk)
            if key is not None and key in seen:
                continue
            if not _room(recorder, event):
                return False
            values = raw[start:end]
            if columns:
                values = list(values)
                for i, funcs, expression in columns:
                    value = values[i]
                    for func in funcs:
                        value = func(value, expression, connection)
                    values[i] = value
            event["rows"].append(_encoded_row(recorder, plan, values, None, secrets))
            if key is not None:
                seen.add(key)
    return read < limit


def _snapshot_table(recorder: Recorder, model: type[Model], using: str, limit: int) -> None:
    try:
        query = model._base_manager.db_manager(using).all()[:limit].query
        sub = query.clone()
        sub.clear_ordering(force=True)
        sub.clear_select_clause()
        sub.select = tuple(
            f.get_col(query.get_initial_alias()) for f in model._meta.concrete_fields
        )
        # A base manager of the project's may filter: then not the whole table.
        with unlogged(using):
            if _record_rows(recorder, using, sub, [model], limit) and not query.where:
                recorder.whole_tables.add((model, using))
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
            if model is not None and (model, using) not in recorder.whole_tables:
                _snapshot_table(recorder, model, using, limit)
