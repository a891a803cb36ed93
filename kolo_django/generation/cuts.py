"""The parts of a plan's arrange that ``--minimize`` may cut, and how cuts apply.

A :class:`Cut` names what it removes by ids taken once from the original plan (a seed
row's variable, ``Model#n`` for an unnamed bulk_create row), so any set of cuts applies
to the original plan and gives a new one; the original is never changed.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import io
import re
import tokenize
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import models

from .plan import (
    LoginStep,
    Plan,
    ResetSequencesStep,
    RestoreSessionStep,
    SeedBulkStep,
    SeedLinksStep,
    SeedRowStep,
    SeedUpdateStep,
    SetPasswordStep,
)
from .values import Code

# Headers the test client sets itself, or that carry credentials: never cut.
KEPT_HEADERS = {
    "authorization",
    "proxy-authorization",
    "cookie",
    "host",
    "content-type",
    "content-length",
    "x-csrftoken",
    "x-csrf-token",
}


@dataclass(frozen=True)
class Cut:
    """One group of things removed from the arrange, tried and kept or rejected whole."""

    kind: str  # rows | fields | links | headers
    rows: tuple[str, ...] = ()  # rows removed (rows) or whose field is reset (fields)
    field: str = ""  # the seed field (fields) or the M2M field (links)
    resets: tuple[tuple[str, str], ...] = ()  # (row, field) references left at default
    links: tuple[tuple[str, str], ...] = ()  # (owner, target) of M2M links removed
    target: str = ""  # the header name
    block: int = -1  # the request whose header it is
    label: str = dataclasses.field(default="", compare=False)


@dataclass(frozen=True)
class Counts:
    rows: int
    fields: int
    links: int
    headers: int
    asserts: int


@dataclass
class _Row:
    id: str  # the variable, or "Model#n" for an unnamed row of a bulk_create
    step: int  # index in plan.seeds
    index: int | None  # index in a SeedBulkStep's rows
    model: str
    fields: dict[str, Code]
    factory: bool = False
    updates: dict[str, Code] = field(default_factory=dict)  # SeedUpdateStep fields

    @property
    def var(self) -> str | None:
        return None if "#" in self.id else self.id


@dataclass
class _State:
    rows: set[str]
    resets: set[tuple[str, str]]
    links: set[tuple[str, str, str]]
    headers: set[tuple[int, str]]


def state_of(cuts: Iterable[Cut]) -> _State:
    state = _State(set(), set(), set(), set())
    for cut in cuts:
        if cut.kind == "rows":
            state.rows.update(cut.rows)
            state.resets.update(cut.resets)
        elif cut.kind == "fields":
            state.resets.update((row, cut.field) for row in cut.rows)
        elif cut.kind == "links":
            state.links.update((owner, cut.field, target) for owner, target in cut.links)
        elif cut.kind == "headers":
            state.headers.add((cut.block, cut.target))
    return state


@functools.lru_cache(maxsize=4096)
def _names(text: str) -> frozenset[str]:
    """The names an expression mentions (not the words inside its strings)."""
    try:
        tokens = tokenize.generate_tokens(io.StringIO(text).readline)
        return frozenset(t.string for t in tokens if t.type == tokenize.NAME)
    except (tokenize.TokenError, SyntaxError):
        return frozenset(re.findall(r"[A-Za-z_]\w*", text))


class Arrangement:
    """The cuttable parts of a plan, named once so any set of cuts applies to the original."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.rows: dict[str, _Row] = {}
        self.update_owner: dict[int, str] = {}  # SeedUpdateStep index -> row
        self.password_owner: dict[int, str] = {}  # SetPasswordStep index -> row
        self.models = _model_classes(plan)
        counters: dict[str, int] = {}
        for i, step in enumerate(plan.seeds):
            if isinstance(step, SeedRowStep):
                self.rows[step.var] = _Row(
                    step.var, i, None, step.model, dict(step.fields), bool(step.factory)
                )
            elif isinstance(step, SeedBulkStep):
                for j, fields in enumerate(step.rows):
                    counters[step.model] = counters.get(step.model, 0) + 1
                    row_id = f"{step.model}#{counters[step.model]}"
                    self.rows[row_id] = _Row(row_id, i, j, step.model, dict(fields))
        for i, step in enumerate(plan.seeds):
            if isinstance(step, SeedUpdateStep):
                owner = self._update_owner(step)
                if owner is not None:
                    self.update_owner[i] = owner
                    self.rows[owner].updates.update(step.fields)
            elif isinstance(step, SetPasswordStep) and step.user in self.rows:
                self.password_owner[i] = step.user
        self.fixed = self._fixed_names()
        self.seeded_models = {row.model for row in self.rows.values()}

    def _update_owner(self, step: SeedUpdateStep) -> str | None:
        match = re.fullmatch(r"(\w+)\.pk", step.pk.text)
        if match and match.group(1) in self.rows:
            return match.group(1)
        for row in self.rows.values():  # an explicit pk: the row created with it
            pk = row.fields.get("id") or row.fields.get("pk")
            if row.model == step.model and pk is not None and pk.text == step.pk.text:
                return row.id
        return None

    def _fixed_names(self) -> set[str]:
        """Names that steps no cut removes refer to: rows behind them must stay."""
        texts = _request_texts(self.plan)
        for i, step in enumerate(self.plan.seeds):
            if isinstance(step, SeedUpdateStep) and i not in self.update_owner:
                texts += [step.pk.text, *(c.text for c in step.fields.values())]
        return {name for text in texts for name in _names(text)}

    # --- candidates ----------------------------------------------------------------------

    def model(self, name: str) -> type[models.Model] | None:
        return self.models.get(name)

    def pk_names(self, model_name: str) -> set[str]:
        """The keywords that set a row's primary key (not counted as fields)."""
        model = self.model(model_name)
        if model is None:
            return {"id", "pk"}
        return {"pk", model._meta.pk.name, model._meta.pk.attname}

    def resettable(self, row: _Row, name: str) -> bool:
        """Can ``name`` be left out of the row's create() (its default then applies)?"""
        if name in row.updates and name not in row.fields:
            return True  # an auto_now value set afterwards: leave it at "now"
        model = self.model(row.model)
        if model is None or name == "pk":
            return False
        found = _model_field(model, name)
        if found is None or found.primary_key:
            return False
        if row.factory:
            return True  # the factory's own declaration applies
        if found.is_relation:
            return bool(found.null)
        if found.unique and not (found.has_default() and callable(found.default)):
            return False
        return bool(found.has_default() or found.null or found.empty_strings_allowed)

    def candidates(self, accepted: Sequence[Cut], rejected: set[Cut]) -> list[Cut]:
        state = state_of(accepted)
        out: list[Cut] = []
        seen: set[Cut] = set(accepted) | rejected
        refs = self._references(state)
        for row in self.rows.values():
            if row.id in state.rows:
                continue
            cut = self._row_cut(row, state, refs)
            if cut is not None and cut not in seen:
                seen.add(cut)
                out.append(cut)
        out += [c for c in self._field_cuts(state) if c not in seen]
        out += [c for c in self._link_cuts(state) if c not in seen]
        out += [c for c in self._header_cuts(state) if c not in seen]
        return out

    def _references(self, state: _State) -> dict[str, list[tuple[str, str]]]:
        """For each name, the (row, field) of the remaining seed fields mentioning it."""
        refs: dict[str, list[tuple[str, str]]] = {}
        for row in self.rows.values():
            if row.id in state.rows:
                continue
            for name, code in [*row.fields.items(), *row.updates.items()]:
                if (row.id, name) in state.resets:
                    continue
                for mentioned in _names(code.text):
                    refs.setdefault(mentioned, []).append((row.id, name))
        return refs

    def _row_cut(
        self, row: _Row, state: _State, refs: dict[str, list[tuple[str, str]]]
    ) -> Cut | None:
        """Remove the row, every row that cannot exist without it, and reset the
        optional references to them; None when a kept step needs one of them."""
        closure = [row.id]
        resets: set[tuple[str, str]] = set()
        queue = [row]
        while queue:
            current = queue.pop()
            if current.var is None:
                continue
            if current.var in self.fixed:
                return None
            for other_id, name in refs.get(current.var, ()):
                if other_id in closure or other_id in state.rows:
                    continue
                other = self.rows[other_id]
                if self.resettable(other, name):
                    resets.add((other_id, name))
                else:
                    closure.append(other_id)
                    queue.append(other)
        resets = {(r, f) for r, f in resets if r not in closure}
        label = f"removed {self._describe(row)}"
        if len(closure) > 1:
            label += f" and {plural(len(closure) - 1, 'row')} that need it: " + ", ".join(
                self._describe(self.rows[r]) for r in closure[1:]
            )
        if resets:
            label += "; " + self._describe_resets(sorted(resets)) + " left at the default"
        return Cut("rows", tuple(closure), resets=tuple(sorted(resets)), label=label)

    def _field_cuts(self, state: _State) -> list[Cut]:
        groups: dict[tuple[str, str], list[str]] = {}
        for row in self.rows.values():
            if row.id in state.rows:
                continue
            for name in [*row.fields, *(n for n in row.updates if n not in row.fields)]:
                if (row.id, name) in state.resets or not self.resettable(row, name):
                    continue
                groups.setdefault((row.model, name), []).append(row.id)
        return [self.field_cut(model, name, rows) for (model, name), rows in groups.items()]

    def field_cut(self, model: str, name: str, rows: Sequence[str]) -> Cut:
        where = self._describe(self.rows[rows[0]]) if len(rows) == 1 else plural(len(rows), "row")
        label = f"reset {model}.{name} to its default on {where}"
        return Cut("fields", tuple(rows), field=name, label=label)

    def _link_cuts(self, state: _State) -> list[Cut]:
        groups: dict[tuple[str, str], list[tuple[str, str]]] = {}
        for step in self.plan.seeds:
            if not isinstance(step, SeedLinksStep) or step.owner in state.rows:
                continue
            model = self.rows[step.owner].model if step.owner in self.rows else step.owner
            for target in step.targets:
                if (step.owner, step.field, target.text) in state.links:
                    continue
                if target.text in state.rows:
                    continue
                groups.setdefault((model, step.field), []).append((step.owner, target.text))
        return [self.link_cut(model, name, links) for (model, name), links in groups.items()]

    def link_cut(self, model: str, name: str, links: Sequence[tuple[str, str]]) -> Cut:
        if len(links) == 1:
            label = f"removed link {links[0][0]}.{name} → {links[0][1]}"
        else:
            label = f"removed {len(links)} {model}.{name} links"
        return Cut("links", field=name, links=tuple(links), label=label)

    def _header_cuts(self, state: _State) -> list[Cut]:
        cuts = []
        for block in self.plan.blocks:
            for name in block.request.headers:
                if name.lower() in KEPT_HEADERS or (block.index, name) in state.headers:
                    continue
                where = f" of request {block.index + 1}" if len(self.plan.blocks) > 1 else ""
                cuts.append(
                    Cut(
                        "headers",
                        target=name,
                        block=block.index,
                        label=f"removed header {name}{where}",
                    )
                )
        return cuts

    def describe(self, cuts: Sequence[Cut]) -> list[str]:
        """One line per group removed. Field resets and links that a removed row
        already implies are left out; resets of the same rows share a line."""
        state = state_of(c for c in cuts if c.kind == "rows")
        lines: list[str] = []
        fields: dict[tuple[str, ...], list[str]] = {}
        for cut in cuts:
            if cut.kind == "fields":
                rows = tuple(r for r in cut.rows if (r, cut.field) not in state.resets)
                rows = tuple(r for r in rows if r not in state.rows)
                if rows:
                    fields.setdefault(rows, []).append(cut.field)
            elif cut.kind == "links":
                if any(o not in state.rows and t not in state.rows for o, t in cut.links):
                    lines.append(cut.label)
            else:
                lines.append(cut.label)
        for rows, names in fields.items():
            model = self.rows[rows[0]].model
            where = (
                self._describe(self.rows[rows[0]]) if len(rows) == 1 else plural(len(rows), "row")
            )
            if len(names) == 1:
                lines.append(f"reset {model}.{names[0]} to its default on {where}")
            else:
                lines.append(f"reset {model}.{', '.join(names)} to their defaults on {where}")
        return lines

    def _describe_resets(self, resets: Sequence[tuple[str, str]]) -> str:
        if len(resets) <= 3:
            return ", ".join(
                f"{self.rows[r].var or self._describe(self.rows[r])}.{f}" for r, f in resets
            )
        by_field: dict[tuple[str, str], int] = {}
        for r, f in resets:
            key = (self.rows[r].model, f)
            by_field[key] = by_field.get(key, 0) + 1
        return ", ".join(f"{m}.{f} on {plural(n, 'row')}" for (m, f), n in by_field.items())

    def _describe(self, row: _Row) -> str:
        if row.var is not None:
            return f"{row.var} ({row.model})"
        pk = row.fields.get("id") or row.fields.get("pk")
        if pk is not None:
            return f"{row.model}(id={pk.text})"
        return f"{row.model} row {row.id.split('#')[1]} of a bulk_create"

    # --- applying cuts -------------------------------------------------------------------

    def apply(self, cuts: Iterable[Cut]) -> Plan:
        """A new plan: the original with ``cuts`` made (the original is left as it was)."""
        state = state_of(cuts)
        plan = self.plan
        seeds: list[Any] = []
        for i, step in enumerate(plan.seeds):
            if isinstance(step, SeedRowStep):
                if step.var in state.rows:
                    continue
                fields = _kept(step.fields, step.var, state)
                seeds.append(dataclasses.replace(step, fields=fields))
            elif isinstance(step, SeedBulkStep):
                rows = [
                    _kept(fields, row.id, state)
                    for row in self.rows.values()
                    if row.step == i and row.id not in state.rows
                    for fields in [step.rows[row.index or 0]]
                ]
                if rows:
                    seeds.append(dataclasses.replace(step, rows=rows))
            elif isinstance(step, SeedUpdateStep):
                owner = self.update_owner.get(i)
                if owner is None:
                    seeds.append(step)
                elif owner not in state.rows:
                    fields = _kept(step.fields, owner, state)
                    if fields:
                        seeds.append(dataclasses.replace(step, fields=fields))
            elif isinstance(step, SeedLinksStep):
                if step.owner in state.rows:
                    continue
                targets = [
                    t
                    for t in step.targets
                    if t.text not in state.rows
                    and (step.owner, step.field, t.text) not in state.links
                ]
                if targets:
                    seeds.append(dataclasses.replace(step, targets=targets))
            elif isinstance(step, SetPasswordStep):
                if self.password_owner.get(i) not in state.rows:
                    seeds.append(step)
            elif isinstance(step, ResetSequencesStep):
                # Models whose seeded rows are all gone need no sequence reset.
                gone = self.seeded_models - {
                    r.model for r in self.rows.values() if r.id not in state.rows
                }
                names = [m for m in step.models if m not in gone]
                if names:
                    seeds.append(dataclasses.replace(step, models=names))
            else:
                seeds.append(step)
        blocks = []
        for block in plan.blocks:
            headers = {
                name: code
                for name, code in block.request.headers.items()
                if (block.index, name) not in state.headers
            }
            if headers == block.request.headers:
                blocks.append(block)
                continue
            request = dataclasses.replace(block.request, kwargs=dict(block.request.kwargs))
            request.set_headers(headers)
            blocks.append(dataclasses.replace(block, request=request))
        new = dataclasses.replace(plan, seeds=seeds, blocks=blocks, imports=set(plan.imports))
        if plan.needs_reset_helper and not any(isinstance(s, ResetSequencesStep) for s in seeds):
            new.needs_reset_helper = False
        used = _used_names(new)
        new.seeds = [
            dataclasses.replace(s, assign=s.var in used)
            if isinstance(s, SeedRowStep) and s.assign and s.var not in used
            else s
            for s in new.seeds
        ]
        return new

    def counts(self, plan: Plan) -> Counts:
        rows = fields = links = headers = 0
        for step in plan.seeds:
            if isinstance(step, SeedRowStep):
                rows += 1
                pk = self.pk_names(step.model)
                fields += sum(1 for name in step.fields if name not in pk)
            elif isinstance(step, SeedBulkStep):
                rows += len(step.rows)
                pk = self.pk_names(step.model)
                fields += sum(1 for r in step.rows for name in r if name not in pk)
            elif isinstance(step, SeedUpdateStep):
                fields += len(step.fields)
            elif isinstance(step, SeedLinksStep):
                links += len(step.targets)
        headers = sum(len(block.request.headers) for block in plan.blocks)
        asserts = sum(len(b.assertions) + len(b.request.lookups) for b in plan.blocks)
        return Counts(rows, fields, links, headers, asserts)


def _kept(fields: dict[str, Code], row: str, state: _State) -> dict[str, Code]:
    return {name: code for name, code in fields.items() if (row, name) not in state.resets}


def plural(n: int, noun: str) -> str:
    return f"{n} {noun}{'s' if n != 1 else ''}"


def _used_names(plan: Plan) -> set[str]:
    """Every name the plan's code mentions, except in the create() of the row it names."""
    texts = _request_texts(plan)
    for step in plan.seeds:
        if isinstance(step, SeedRowStep):
            texts += [c.text for c in step.fields.values()]
        elif isinstance(step, SeedBulkStep):
            texts += [c.text for fields in step.rows for c in fields.values()]
        elif isinstance(step, SeedUpdateStep):
            texts += [step.pk.text, *(c.text for c in step.fields.values())]
        elif isinstance(step, SeedLinksStep):
            texts += [step.owner, *(t.text for t in step.targets)]
        elif isinstance(step, SetPasswordStep):
            texts.append(step.user)
    return {name for text in texts for name in _names(text)}


def _request_texts(plan: Plan) -> list[str]:
    """The code of everything no cut removes: frozen time, logins, restored session
    values, the requests (headers by value), lookups and asserts."""
    texts: list[str] = []
    if plan.freeze_time is not None:
        texts.append(plan.freeze_time.text)
    for block in plan.blocks:
        for pre in block.pre_steps:
            if isinstance(pre, LoginStep):
                texts.append(pre.user)
            elif isinstance(pre, RestoreSessionStep):
                texts += [c.text for c in pre.values.values()]
        request = block.request
        texts.append(request.path.text)
        texts += [c.text for name, c in request.kwargs.items() if name != "headers"]
        texts += [c.text for c in request.headers.values()]
        for lookup in request.lookups:
            texts += [c.text for c in lookup.filters.values()]
        for assertion in block.assertions:
            texts.append(assertion.left.text)
            if assertion.right is not None:
                texts.append(assertion.right.text)
    return texts


def _model_classes(plan: Plan) -> dict[str, type[models.Model]]:
    """The model classes behind the names the plan uses (from its import lines)."""
    found: dict[str, type[models.Model]] = {}
    for line in plan.imports:
        match = re.fullmatch(r"from ([\w.]+) import (.+)", line.strip())
        if not match:
            continue
        module_name, names = match.groups()
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        for part in names.strip("()").split(","):
            name, _, alias = part.strip().partition(" as ")
            value = getattr(module, name.strip(), None)
            if isinstance(value, type) and issubclass(value, models.Model):
                found[alias.strip() or name.strip()] = value
    return found


def _model_field(model: type[models.Model], name: str) -> Any:
    try:
        return model._meta.get_field(name)
    except Exception:
        return next((f for f in model._meta.concrete_fields if f.attname == name), None)
