"""Arrange: the rows to create so the view sees what it saw when recorded.

Seeds come from the rows the request read (ORM rows and the rows behind
aggregates and raw SQL), minus the rows the traced requests created, plus a
minimal row for every referenced parent that was never read. They are
ordered so parents come first.
"""

from __future__ import annotations

import datetime as dt
import decimal
import graphlib
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from django.db import models

from ..trace import decode_value
from .references import referenced_values
from .rows import NEVER_SEEDED, Row, RowSet, get_model, pk_key
from .values import Code, from_trace, literal

REDACTED = "[REDACTED]"


@dataclass
class SeedRow:
    row: Row
    var: str
    explicit_pk: bool
    minimal: bool = False
    fields: dict[str, Code] = field(default_factory=dict)
    is_user: bool = False
    # auto_now / auto_now_add values the response shows: set after creation,
    # since create() overwrites them.
    fixups: dict[str, Code] = field(default_factory=dict)
    factory: Any = None  # a FactoryHook when FACTORIES has one for the model

    @property
    def model(self) -> type[models.Model]:
        return self.row.model


@dataclass
class SeedLinks:
    """M2M links through an auto-created table: ``owner.field.add(*targets)``."""

    owner: SeedRow
    field_name: str
    targets: list[Code]


@dataclass
class Seeds:
    rows: list[SeedRow]
    links: list[SeedLinks]
    by_key: dict[tuple[str, str], SeedRow]
    sequence_models: list[type[models.Model]]
    notes: list[str]


def snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def build_seeds(
    documents: list[dict[str, Any]], rowset: RowSet, factories: dict[Any, Any] | None = None
) -> Seeds:
    created = rowset.created_keys()
    notes: list[str] = []
    candidates: dict[tuple[str, str], Row] = {}
    through_rows: list[Row] = []
    for key, row in rowset.rows.items():
        if key in created or row.label in NEVER_SEEDED:
            continue
        if row.model._meta.auto_created:
            through_rows.append(row)
            continue
        candidates[key] = row
    _add_users(documents, candidates, created)
    _drop_inherited_parents(candidates)
    for row in list(candidates.values()) + through_rows:
        _add_missing_parents(row, candidates, rowset, created, notes)

    referenced = referenced_values(documents)
    explicit_models = {
        row.label
        for row in candidates.values()
        if not _integer_pk(row.model) or pk_key(row.pk) in referenced
    }
    seeds: dict[tuple[str, str], SeedRow] = {}
    user_model = get_user_model()
    used_names: set[str] = set()
    for key, row in _ordered(candidates, rowset):
        var = _var_name(row, used_names)
        factory = (factories or {}).get(row.model)
        explicit = row.label in explicit_models
        if factory is not None:
            # A factory row keeps its recorded pk only when asked to.
            explicit = factory.with_pk and row.pk is not None
        seeds[key] = SeedRow(
            row=row,
            var=var,
            explicit_pk=explicit,
            minimal="minimal" in row.sources,
            is_user=row.model is user_model,
            factory=factory,
        )
    shown = _response_text(documents)
    for seed in seeds.values():
        seed.fields = _field_codes(seed, seeds, rowset)
        seed.fixups = _fixups(seed, shown)
    links = _links(through_rows, seeds, rowset)
    sequence_models = sorted(
        {
            m
            for s in seeds.values()
            if s.explicit_pk and _integer_pk(s.model)
            # A multi-table child's id lives in its root parent's sequence.
            for m in [s.model, *s.model._meta.get_parent_list()]
            if not m._meta.pk.is_relation
        },
        key=lambda m: m._meta.label,
    )
    return Seeds(list(seeds.values()), links, seeds, sequence_models, notes)


def _integer_pk(model: type[models.Model]) -> bool:
    pk = model._meta.pk
    while pk.is_relation:  # a multi-table child: the root parent's key
        pk = pk.target_field
    return pk.get_internal_type() in (
        "AutoField",
        "BigAutoField",
        "SmallAutoField",
        "IntegerField",
        "BigIntegerField",
    )


def _add_users(
    documents: list[dict[str, Any]],
    candidates: dict[tuple[str, str], Row],
    created: dict[tuple[str, str], int],
) -> None:
    """The logged-in user is seeded even when the view never loaded its row."""
    user_model = get_user_model()
    for index, document in enumerate(documents):
        user = (document.get("request") or {}).get("user") or {}
        auth = (document.get("request") or {}).get("auth") or {}
        if user.get("authenticated"):
            pk = decode_value(user.get("pk"))
            key = (user_model._meta.label_lower, pk_key(pk))
            if key not in candidates and key not in created:
                candidates[key] = Row(
                    user_model,
                    "default",
                    pk,
                    {user_model.USERNAME_FIELD: user.get("username")},
                    {"request user"},
                    index,
                )
        elif auth.get("scheme") == "basic" and auth.get("username"):
            username = auth["username"]
            if not any(
                r.model is user_model and r.values.get(user_model.USERNAME_FIELD) == username
                for r in candidates.values()
            ):
                key = (user_model._meta.label_lower, f"basic:{username}")
                candidates[key] = Row(
                    user_model,
                    "default",
                    None,
                    {user_model.USERNAME_FIELD: username},
                    {"minimal"},
                    index,
                )


def _drop_inherited_parents(candidates: dict[tuple[str, str], Row]) -> None:
    """A multi-table child row creates its parent rows itself."""
    for row in list(candidates.values()):
        for parent in row.model._meta.get_parent_list():
            candidates.pop((parent._meta.label_lower, pk_key(row.pk)), None)


def _fk_fields(model: type[models.Model]) -> list[Any]:
    return [
        f
        for f in model._meta.concrete_fields
        if f.is_relation
        and (f.many_to_one or f.one_to_one)
        and not getattr(f.remote_field, "parent_link", False)
    ]


def _add_missing_parents(
    row: Row,
    candidates: dict[tuple[str, str], Row],
    rowset: RowSet,
    created: dict[tuple[str, str], int],
    notes: list[str],
) -> None:
    for target, target_field, value in _references(row, rowset):
        if value is None or value == REDACTED:
            continue
        if target_field is not target._meta.pk:
            # A foreign key to a unique non-primary field (to_field).
            if _find_by_field(target, target_field.attname, value, candidates) is not None:
                continue
            found = _find_by_field(target, target_field.attname, value, rowset.rows)
            key = found or (target._meta.label_lower, f"{target_field.attname}={pk_key(value)}")
            if key in created:
                continue
            candidates[key] = (
                rowset.rows[found]
                if found
                else Row(
                    target,
                    row.alias,
                    None,
                    {target_field.attname: value},
                    {"minimal"},
                    row.trace_index,
                )
            )
            _add_missing_parents(candidates[key], candidates, rowset, created, notes)
            continue
        key = (target._meta.label_lower, pk_key(value))
        if key[0] in NEVER_SEEDED or key in candidates or key in created:
            continue
        recorded = rowset.rows.get(key)
        parent = (
            recorded
            if recorded is not None
            else Row(target, row.alias, decode_value(value), {}, {"minimal"}, row.trace_index)
        )
        candidates[key] = parent
        notes.append(
            f"{target._meta.label} pk={decode_value(value)} was never read; a minimal row stands in for it"
        )
        _add_missing_parents(parent, candidates, rowset, created, notes)


def generic_fks(model: type[models.Model]) -> list[tuple[Any, Any]]:
    """(content type field, object id field) of each GenericForeignKey."""
    from django.contrib.contenttypes.fields import GenericForeignKey

    pairs = []
    for private in model._meta.private_fields:
        if isinstance(private, GenericForeignKey):
            pairs.append(
                (
                    model._meta.get_field(private.ct_field),
                    model._meta.get_field(private.fk_field),
                )
            )
    return pairs


def generic_target(row: Row, ct_field: Any, rowset: RowSet) -> type[models.Model] | None:
    return content_type_model(row.values.get(ct_field.attname), rowset)


def content_type_model(pk: Any, rowset: RowSet) -> type[models.Model] | None:
    """The model of the content type with this recorded pk."""
    app_label, name = _content_type(pk, rowset)
    return get_model(f"{app_label}.{name}") if app_label else None


def _references(row: Row, rowset: RowSet) -> list[tuple[type[models.Model], Any, Any]]:
    """(target model, target field, value) of each reference a row makes."""
    found = [
        (fk.related_model, fk.target_field, row.values.get(fk.attname))
        for fk in _fk_fields(row.model)
    ]
    for ct_field, fk_field in generic_fks(row.model):
        target = generic_target(row, ct_field, rowset)
        if target is not None:
            found.append((target, target._meta.pk, row.values.get(fk_field.attname)))
    return found


def _find_by_field(
    model: type[models.Model], attname: str, value: Any, rows: dict[tuple[str, str], Row]
) -> tuple[str, str] | None:
    label = model._meta.label_lower
    for key, row in rows.items():
        if (
            key[0] == label
            and attname in row.values
            and pk_key(row.values[attname]) == pk_key(value)
        ):
            return key
    return None


def _ordered(
    candidates: dict[tuple[str, str], Row], rowset: RowSet
) -> list[tuple[tuple[str, str], Row]]:
    graph: dict[str, set[str]] = {}
    for row in candidates.values():
        deps = graph.setdefault(row.label, set())
        for fk in _fk_fields(row.model):
            target = fk.related_model._meta.label_lower
            if target != row.label and not fk.null:
                deps.add(target)
            elif target != row.label and row.values.get(fk.attname) is not None:
                deps.add(target)
        for ct_field, _fk_field in generic_fks(row.model):
            target_model = generic_target(row, ct_field, rowset)
            if target_model is not None and target_model._meta.label_lower != row.label:
                deps.add(target_model._meta.label_lower)
    try:
        order = list(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError:
        order = sorted(graph)
    rank = {label: i for i, label in enumerate(order)}

    def sort_key(item: tuple[tuple[str, str], Row]) -> tuple[Any, ...]:
        (label, key), row = item
        number = int(key) if key.isdigit() else -1
        return (rank.get(label, 0), 0 if row.pk is not None else 1, number, key)

    ordered = sorted(candidates.items(), key=sort_key)
    return _parents_first(ordered)


def _parents_first(ordered: list[tuple[tuple[str, str], Row]]) -> list[tuple[tuple[str, str], Row]]:
    """Rows of a self-referencing model (a tree) after the row they point at."""
    keys = {key for key, _ in ordered}
    placed: set[tuple[str, str]] = set()
    out: list[tuple[tuple[str, str], Row]] = []
    waiting = list(ordered)
    while waiting:
        progressed = False
        for item in list(waiting):
            key, row = item
            parents = {
                (row.label, pk_key(row.values[fk.attname]))
                for fk in _fk_fields(row.model)
                if fk.related_model is row.model and row.values.get(fk.attname) is not None
            }
            if all(p in placed or p not in keys or p == key for p in parents):
                out.append(item)
                placed.add(key)
                waiting.remove(item)
                progressed = True
        if not progressed:  # a cycle: keep the recorded order
            out.extend(waiting)
            break
    return out


def _var_name(row: Row, used: set[str]) -> str:
    base = snake(row.model.__name__)
    suffix = pk_key(row.pk) if row.pk is not None and pk_key(row.pk).isdigit() else ""
    name = f"{base}_{suffix}" if suffix else base
    counter = 1
    candidate = name
    while candidate in used:
        counter += 1
        candidate = f"{name}_{counter}"
    used.add(candidate)
    return candidate


def _field_codes(
    seed: SeedRow, seeds: dict[tuple[str, str], SeedRow], rowset: RowSet
) -> dict[str, Code]:
    model = seed.model
    row = seed.row
    codes: dict[str, Code] = {}
    if seed.explicit_pk and row.pk is not None:
        codes[model._meta.pk.attname if not model._meta.pk.is_relation else "pk"] = literal(row.pk)
    for f in model._meta.concrete_fields:
        if f.primary_key or getattr(f.remote_field, "parent_link", False):
            continue
        if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
            continue
        if f.attname not in row.values:
            if seed.minimal and _required(f):
                code = _minimal_value(f, row, seeds)
                if code is not None:
                    codes[f.name] = code
            continue
        value = row.values[f.attname]
        if value == REDACTED:
            continue
        generic = _generic_reference(seed, f, value, seeds, rowset)
        if generic is not None:
            codes[f.name] = generic
            continue
        if f.is_relation and (f.many_to_one or f.one_to_one):
            code = _reference(f, value, seeds, rowset)
            if code is not None:
                codes[f.name] = code
            continue
        decoded = decode_value(value)
        declared = seed.factory is not None and f.name in getattr(
            seed.factory.factory._meta, "declarations", {}
        )
        if _is_default(f, decoded) and not declared:
            continue
        if seed.factory is not None and _factory_produces(seed.factory, f.name, decoded):
            continue
        codes[f.name] = from_trace(value, f)
    return codes


def _factory_produces(hook: Any, name: str, value: Any) -> bool:
    """The factory declares this very value itself: no need to pass it."""
    declarations = getattr(hook.factory._meta, "declarations", {})
    if name not in declarations:
        return False
    declared = declarations[name]
    return type(declared) is type(value) and declared == value


def _response_text(documents: list[dict[str, Any]]) -> str:
    return "\n".join(str((d.get("response") or {}).get("content") or "") for d in documents)


def _fixups(seed: SeedRow, shown: str) -> dict[str, Code]:
    fixups: dict[str, Code] = {}
    for f in seed.model._meta.concrete_fields:
        if not (getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False)):
            continue
        value = decode_value(seed.row.values.get(f.attname))
        if isinstance(value, (dt.datetime, dt.date)):
            text = value.isoformat()
            if text in shown or text.replace("+00:00", "Z") in shown:
                fixups[f.name] = literal(value)
    return fixups


def _generic_reference(
    seed: SeedRow, f: Any, value: Any, seeds: dict[tuple[str, str], SeedRow], rowset: RowSet
) -> Code | None:
    """The object id of a generic foreign key, as the seeded target's pk."""
    for ct_field, fk_field in generic_fks(seed.model):
        if fk_field is f and value is not None:
            target = generic_target(seed.row, ct_field, rowset)
            if target is not None:
                found = seeds.get((target._meta.label_lower, pk_key(value)))
                if found is not None:
                    return Code(f"{found.var}.pk")
    return None


def _required(f: Any) -> bool:
    if f.null or f.blank or f.has_default() or getattr(f, "auto_created", False):
        return False
    # A user's password stays empty: tests log in with force_login().
    return f.attname != "password"


def _is_default(f: Any, value: Any) -> bool:
    if not f.has_default():
        return value in ("", None) and (f.null or f.blank) and not f.is_relation
    try:
        default = f.get_default()
        return default == value and type(default) is type(value)
    except Exception:
        return False


def _reference(
    f: Any, value: Any, seeds: dict[tuple[str, str], SeedRow], rowset: RowSet
) -> Code | None:
    if value is None:
        return None if f.null else literal(None)
    target = f.related_model
    if f.target_field is not target._meta.pk:
        by_field = {k: s.row for k, s in seeds.items()}
        found = _find_by_field(target, f.target_field.attname, value, by_field)
        return Code(seeds[found].var) if found else None
    key = (target._meta.label_lower, pk_key(value))
    if key in seeds:
        return Code(seeds[key].var)
    natural = natural_reference(target, value, rowset)
    if natural is not None:
        return natural
    # A row created by an earlier request of the flow, or one we cannot
    # know: keep the raw id and let the database say if it is wrong.
    return None


def natural_reference(model: type[models.Model], pk: Any, rowset: RowSet) -> Code | None:
    """Rows that migrations create are referred to by natural key, never by pk."""
    label = model._meta.label_lower
    if label == "contenttypes.contenttype":
        app_label, name = _content_type(pk, rowset)
        if app_label:
            return Code(
                f"ContentType.objects.get_by_natural_key({app_label!r}, {name!r})",
                frozenset({"from django.contrib.contenttypes.models import ContentType"}),
            )
    if label == "auth.permission":
        values = (rowset.rows.get((label, pk_key(pk))) or Row(model, "default", pk)).values
        codename = values.get("codename")
        app_label, _ = _content_type(values.get("content_type_id"), rowset)
        if codename is None or not app_label:
            try:
                perm = model._base_manager.select_related("content_type").get(pk=decode_value(pk))
                codename, app_label = perm.codename, perm.content_type.app_label
            except Exception:
                return None
        return Code(
            f"Permission.objects.get(content_type__app_label={app_label!r}, codename={codename!r})",
            frozenset({"from django.contrib.auth.models import Permission"}),
        )
    return None


def _content_type(pk: Any, rowset: RowSet) -> tuple[str | None, str | None]:
    if pk is None:
        return None, None
    row = rowset.rows.get(("contenttypes.contenttype", pk_key(pk)))
    if row is not None and "app_label" in row.values:
        return row.values.get("app_label"), row.values.get("model")
    try:
        from django.contrib.contenttypes.models import ContentType

        ct = ContentType.objects.get_for_id(decode_value(pk))
        return ct.app_label, ct.model
    except Exception:
        return None, None


def _minimal_value(f: Any, row: Row, seeds: dict[tuple[str, str], SeedRow]) -> Code | None:
    """A valid value for a required field of a row that was never read."""
    if f.choices:
        return literal(f.choices[0][0])
    internal = f.get_internal_type()
    tag = f"{row.model.__name__.lower()}-{pk_key(row.pk) if row.pk is not None else 'x'}"
    if f.is_relation:
        return None
    if internal == "EmailField":
        return literal(f"{tag}@example.com")
    if internal in ("CharField", "TextField", "SlugField"):
        text = tag if row.model is not get_user_model() else tag.replace("-", "_")
        return literal(text[: f.max_length] if f.max_length else text)
    if internal in (
        "IntegerField",
        "BigIntegerField",
        "SmallIntegerField",
        "PositiveIntegerField",
        "PositiveSmallIntegerField",
        "PositiveBigIntegerField",
    ):
        return literal(int(pk_key(row.pk)) if f.unique and pk_key(row.pk).isdigit() else 0)
    if internal == "DecimalField":
        return literal(decimal.Decimal("0"))
    if internal == "FloatField":
        return literal(0.0)
    if internal == "BooleanField":
        return literal(False)
    if internal == "DateTimeField":
        return literal(dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc))
    if internal == "DateField":
        return literal(dt.date(2000, 1, 1))
    if internal == "TimeField":
        return literal(dt.time(0, 0))
    if internal == "DurationField":
        return literal(dt.timedelta(0))
    if internal == "UUIDField":
        return literal(uuid.uuid5(uuid.NAMESPACE_URL, tag))
    if internal == "JSONField":
        return literal({})
    if internal == "BinaryField":
        return literal(b"")
    return None


def _links(
    through_rows: list[Row], seeds: dict[tuple[str, str], SeedRow], rowset: RowSet
) -> list[SeedLinks]:
    grouped: dict[tuple[str, str], SeedLinks] = {}
    for row in sorted(
        through_rows, key=lambda r: (r.label, int(pk_key(r.pk)) if pk_key(r.pk).isdigit() else 0)
    ):
        through = row.model
        declaring = through._meta.auto_created
        m2m = next(
            (f for f in declaring._meta.many_to_many if f.remote_field.through is through), None
        )
        if m2m is None:
            continue
        source_attname = through._meta.get_field(m2m.m2m_field_name()).attname
        target_field = through._meta.get_field(m2m.m2m_reverse_field_name())
        owner = seeds.get((declaring._meta.label_lower, pk_key(row.values.get(source_attname))))
        if owner is None:
            continue
        target_value = row.values.get(target_field.attname)
        target_model = target_field.related_model
        target_seed = seeds.get((target_model._meta.label_lower, pk_key(target_value)))
        target = (
            Code(target_seed.var)
            if target_seed
            else natural_reference(target_model, target_value, rowset)
        )
        if target is None:
            continue
        link = grouped.setdefault((owner.var, m2m.name), SeedLinks(owner, m2m.name, []))
        if all(t.text != target.text for t in link.targets):
            link.targets.append(target)
    return list(grouped.values())


def get_model_or_none(label: str) -> type[models.Model] | None:
    return get_model(label)
