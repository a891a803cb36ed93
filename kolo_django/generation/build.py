"""Builds the plan from the context: arrange, act and assert for each traced request."""

from __future__ import annotations

import base64
import datetime as dt
import re
from typing import Any
from urllib.parse import urlsplit

from django.contrib.auth import get_user_model
from django.db import models
from django.urls import Resolver404, resolve

from ..trace import decode_value
from .asserts import AssertionsMixin, skip_model
from .plan import (
    LoginStep,
    LookupStep,
    MockHttpStep,
    Plan,
    PlannedRequest,
    RequestBlock,
    ResetSequencesStep,
    RestoreSessionStep,
    SeedBulkStep,
    SeedLinksStep,
    SeedRowStep,
    SeedUpdateStep,
    SetPasswordStep,
    headers_code,
)
from .rows import RowSet, Write, pk_key
from .seeds import (
    REDACTED,
    SeedRow,
    Seeds,
    content_type_model,
    generic_fks,
    natural_reference,
    snake,
)
from .values import Code, from_trace, literal

TEST_PASSWORD = "kolo-test-password"
MEANINGFUL_HEADERS = {
    "accept",
    "accept-language",
    "x-requested-with",
    "origin",
    "range",
    "if-none-match",
    "if-modified-since",
}
NEVER_HEADERS = {
    "cookie",
    "authorization",
    "x-csrftoken",
    "x-csrf-token",
    "host",
    "content-length",
    "content-type",
    "connection",
}
SESSION_AUTH_KEYS = {"_auth_user_id", "_auth_user_backend", "_auth_user_hash"}
USERNAME_KEYS = {"username", "email", "login", "user"}
BULK_MIN_ROWS = 4


class PlanBuilder(AssertionsMixin):
    def __init__(self, context: dict[str, Any]) -> None:
        self.context = context
        self.documents: list[dict[str, Any]] = context["traces"]
        self.rowset: RowSet = context["rowset"]
        self.seeds: Seeds = context["seeds"]
        self.options: dict[str, Any] = context["options"]
        self.plan = Plan(
            class_name=context["class_name"],
            test_name=context["test_name"],
            docstring=context["docstring"],
            time_backend=context.get("time_backend"),
            http_backend=context.get("http_backend"),
        )
        self.used_vars: set[str] = set()
        self.model_names: dict[type[models.Model], str] = {}
        # (label, pk key) of rows created by a request -> variable after lookup.
        self.created_vars: dict[tuple[str, str], str] = {}
        self.var_names = {s.var for s in self.seeds.rows}
        # The latest known values of rows the test creates or changes.
        self.row_state: dict[tuple[str, str], dict[str, Any]] = {}
        self.mail_seen = 0
        self.http_seen = 0

    # --- helpers -------------------------------------------------------------------------

    def model_name(self, model: type[models.Model]) -> str:
        name = self.model_names.get(model)
        if name is None:
            name = model.__name__
            if name in self.model_names.values():
                name = "".join(w.capitalize() for w in model._meta.app_label.split("_")) + name
                self.plan.imports.add(f"from {model.__module__} import {model.__name__} as {name}")
            else:
                self.plan.imports.add(f"from {model.__module__} import {name}")
            self.model_names[model] = name
        return name

    def use(self, code: Code | None) -> Code | None:
        if code is not None:
            self.plan.imports.update(code.imports)
            for var in re.findall(r"\b[a-z_][a-z0-9_]*\b", code.text):
                if var in self.var_names:
                    self.used_vars.add(var)
        return code

    def seed_for(self, label: str, key: str) -> SeedRow | None:
        return self.seeds.by_key.get((label, key))

    def ref_code(self, model: type[models.Model], value: Any) -> Code | None:
        """An expression for the row ``model`` with this pk: a seed, a created row or a natural key."""
        key = (model._meta.label_lower, pk_key(value))
        seed = self.seeds.by_key.get(key)
        if seed is not None:
            return Code(seed.var)
        if key in self.created_vars:
            return Code(self.created_vars[key])
        return natural_reference(model, value, self.rowset)

    def generic_ref(
        self, model: type[models.Model], values: dict[str, Any], attname: str
    ) -> Code | None:
        """``<row>.pk`` for the object id of a GenericForeignKey whose row the
        test knows: its recorded id would not be the one the test's row gets."""
        for ct_field, fk_field in generic_fks(model):
            if fk_field.attname == attname and values.get(attname) is not None:
                target = content_type_model(values.get(ct_field.attname), self.rowset)
                return self.pk_code(target, values[attname]) if target is not None else None
        return None

    def pk_code(self, model: type[models.Model], value: Any) -> Code | None:
        ref = self.ref_code(model, value)
        if ref is None:
            return None
        return Code(f"{ref.text}.pk", ref.imports)

    def new_var(self, base: str) -> str:
        name, n = base, 1
        while name in self.var_names:
            n += 1
            name = f"{base}_{n}"
        self.var_names.add(name)
        return name

    # --- build ----------------------------------------------------------------------------

    def build(self) -> Plan:
        self.plan.notes.extend(self.context.get("skipped", []))
        self._databases()
        self._freeze_time()
        self._mocks()
        blocks = [self._block(i, d) for i, d in enumerate(self.documents)]
        self.plan.blocks = blocks
        # Seeds last: only now is it known which variables the test uses.
        self._seeds()
        for step in self.plan.seeds:
            if isinstance(step, SeedRowStep):
                step.assign = step.var in self.used_vars
        self.plan.seeds = _bulk(self.plan.seeds)
        for block in self.plan.blocks:
            for lookup in block.request.lookups:
                lookup.assign = lookup.var in self.used_vars
        return self.plan

    def _databases(self) -> None:
        aliases = {"default"}
        for document in self.documents:
            for event in document.get("events") or ():
                if event.get("type") in ("sql", "orm", "write") and event.get("alias"):
                    aliases.add(event["alias"])
        self.plan.databases = sorted(aliases)

    def _freeze_time(self) -> None:
        backend = self.plan.time_backend
        started = decode_value(self.documents[0].get("started_at"))
        if not backend or not isinstance(started, dt.datetime):
            self.plan.time_backend = None
            return
        self.plan.freeze_time = self.use(literal(started))
        self.plan.imports.add(
            "import time_machine"
            if backend == "time-machine"
            else "from freezegun import freeze_time"
        )

    def _seeds(self) -> None:
        for seed in self.seeds.rows:
            fields = {name: self.use(code) for name, code in seed.fields.items()}
            comment = "never read by the view: a minimal stand-in" if seed.minimal else ""
            using = seed.row.alias if seed.row.alias != "default" else None
            self.plan.seeds.append(
                SeedRowStep(
                    seed.var,
                    self.model_name(seed.model),
                    fields,
                    True,
                    comment,
                    using,
                    self._factory(seed),
                )
            )  # type: ignore[arg-type]
            if seed.is_user and seed.var in self.passwords:
                self.plan.seeds.append(SetPasswordStep(seed.var, TEST_PASSWORD))
        for seed in self.seeds.rows:
            if seed.fixups:
                pk = literal(seed.row.pk) if seed.explicit_pk else Code(f"{seed.var}.pk")
                if not seed.explicit_pk:
                    self.used_vars.add(seed.var)
                fields = {name: self.use(code) for name, code in seed.fixups.items()}
                self.plan.seeds.append(
                    SeedUpdateStep(self.model_name(seed.model), self.use(pk), fields)
                )  # type: ignore[arg-type]
        for link in self.seeds.links:
            self.used_vars.add(link.owner.var)
            self.plan.seeds.append(
                SeedLinksStep(link.owner.var, link.field_name, [self.use(t) for t in link.targets])
            )  # type: ignore[misc]
        if self.seeds.sequence_models:
            self.plan.needs_reset_helper = True
            names = [self.model_name(m) for m in self.seeds.sequence_models]
            self.plan.seeds.append(ResetSequencesStep(names))
            self.plan.imports.update(
                {
                    "from django.core.management.color import no_style",
                    "from django.db import connections",
                }
            )

    def _factory(self, seed: SeedRow) -> str | None:
        if seed.factory is None:
            return None
        self.plan.imports.add(seed.factory.import_line)
        return seed.factory.name

    @property
    def passwords(self) -> set[str]:
        return self.context.setdefault("password_users", set())

    # --- mocks ----------------------------------------------------------------------------

    def _mocks(self) -> None:
        grouped: dict[tuple[str, str], MockHttpStep] = {}
        for document in self.documents:
            for event in document.get("events") or ():
                if event.get("type") != "http" or "status" not in event:
                    continue
                url = event["url"]
                parts = urlsplit(url)
                base = f"{parts.scheme}://{parts.netloc}{parts.path}"
                response = event.get("response") or {}
                body = response.get("body")
                if body is None and response.get("body_base64"):
                    body = base64.b64decode(response["body_base64"]).decode("latin-1")
                content_type = next(
                    (
                        v
                        for k, v in (event.get("response_headers") or {}).items()
                        if k.lower() == "content-type"
                    ),
                    "text/plain",
                )
                step = grouped.setdefault(
                    (event["method"], base), MockHttpStep(event["method"], base, [])
                )
                step.responses.append(
                    {"status": event["status"], "body": body or "", "content_type": content_type}
                )
        self.plan.mocks = list(grouped.values())
        if not self.plan.mocks:
            return
        libraries = {
            e.get("library")
            for d in self.documents
            for e in d.get("events") or ()
            if e.get("type") == "http"
        }
        if self.plan.http_backend == "responses" and libraries - {"requests"}:
            # responses only patches requests: httpx or urllib calls need httpretty.
            self.plan.notes.append(
                f"outbound calls through {', '.join(sorted(libraries - {'requests'}))} are mocked with httpretty"
            )
            self.plan.http_backend = "httpretty"
        if self.plan.http_backend == "responses":
            self.plan.imports.add("import responses")
        else:
            self.plan.http_backend = "httpretty"
            self.plan.imports.update({"import re", "import httpretty"})

    # --- one request ----------------------------------------------------------------------

    def _block(self, index: int, document: dict[str, Any]) -> RequestBlock:
        request = document.get("request") or {}
        method = str(request.get("method") or "GET").lower()
        pre_steps = self._auth_steps(index, request)
        planned = self._request(index, request, method)
        planned.on_commit = any(e.get("type") == "write" for e in document.get("events") or ())
        writes = [w for w in self.rowset.writes if w.trace_index == index]
        planned.lookups = self._lookups(index, writes)
        return RequestBlock(
            index=index,
            title=f"{request.get('method')} {request.get('path')}",
            request=planned,
            pre_steps=pre_steps,
            assertions=self._assertions(index, document, writes),
        )

    def _auth_steps(self, index: int, request: dict[str, Any]) -> list[Any]:
        steps: list[Any] = []
        user = request.get("user") or {}
        auth = request.get("auth") or {}
        user_model = get_user_model()
        if auth.get("scheme") == "basic" and auth.get("username"):
            seed = self._user_seed(auth["username"])
            if seed is not None:
                self.passwords.add(seed.var)
                self.used_vars.add(seed.var)
        elif user.get("authenticated") and _logged_in_before(request):
            ref = self.ref_code(user_model, decode_value(user.get("pk")))
            if ref is not None:
                self.use(ref)
                steps.append(LoginStep(ref.text))
        elif index > 0 and (self.documents[index - 1].get("request") or {}).get("user", {}).get(
            "authenticated"
        ):
            steps.append(LoginStep(""))  # log out: the earlier request's user is gone
        session = {
            k: v
            for k, v in (request.get("session") or {}).items()
            if k not in SESSION_AUTH_KEYS and v != REDACTED
        }
        if session:
            values = {k: self.use(self._session_value(v)) for k, v in session.items()}
            steps.append(RestoreSessionStep(values))  # type: ignore[arg-type]
        return steps

    def _session_value(self, value: Any) -> Code:
        return from_trace(value)

    def _user_seed(self, username: str) -> SeedRow | None:
        user_model = get_user_model()
        for seed in self.seeds.rows:
            if (
                seed.model is user_model
                and seed.row.values.get(user_model.USERNAME_FIELD) == username
            ):
                return seed
        return None

    def _path(self, path: str) -> Code:
        """The request path; ids of rows created earlier in the flow are looked up."""
        try:
            match = resolve(path)
        except Resolver404:
            return literal(path)
        if not match.url_name:
            return literal(path)
        swapped = False
        kwargs: dict[str, Code] = {}
        for name, value in match.kwargs.items():
            code = self._created_pk_for(value)
            if code is not None:
                kwargs[name] = code
                swapped = True
            else:
                kwargs[name] = literal(value)
        if not swapped:
            return literal(path)
        self.plan.imports.add("from django.urls import reverse")
        view_name = match.view_name
        args = ", ".join(f"{k!r}: {v.text}" for k, v in kwargs.items())
        return Code(f"reverse({view_name!r}, kwargs={{{args}}})")

    def _created_pk_for(self, value: Any) -> Code | None:
        for (_label, key), var in self.created_vars.items():
            if key == str(value):
                self.used_vars.add(var)
                return Code(f"{var}.pk")
        return None

    def _request(self, index: int, request: dict[str, Any], method: str) -> PlannedRequest:
        kwargs: dict[str, Code] = {}
        query = request.get("query") or {}
        if query:
            kwargs["query_params"] = literal(
                {k: v[0] if len(v) == 1 else v for k, v in query.items()}
            )
        body = request.get("body") or {}
        kind = body.get("kind")
        content_type = request.get("content_type") or ""
        if kind == "form":
            form = self._form(body.get("form") or {}, index)
            self.plan.imports.add("from urllib.parse import urlencode")
            kwargs["data"] = Code(
                f"urlencode({literal(form).text}, doseq=True)", literal(form).imports
            )
            kwargs["content_type"] = literal("application/x-www-form-urlencoded")
        elif kind == "multipart":
            data: dict[str, Any] = {
                k: (v[0] if len(v) == 1 else v)
                for k, v in self._form(body.get("form") or {}, index).items()
            }
            parts = [f"{literal(k).text}: {literal(v).text}" for k, v in data.items()]
            for upload in body.get("files") or ():
                content = base64.b64decode(upload.get("base64") or "")
                parts.append(
                    f"{upload['field']!r}: SimpleUploadedFile({upload['name']!r}, {content!r}, "
                    f"content_type={upload.get('content_type') or 'application/octet-stream'!r})"
                )
                self.plan.imports.add(
                    "from django.core.files.uploadedfile import SimpleUploadedFile"
                )
            kwargs["data"] = Code("{" + ", ".join(parts) + "}")
            if method != "post":
                self.plan.notes.append(
                    f"multipart {method.upper()} replayed as the test client encodes it"
                )
        elif kind == "json":
            data_code = self.use(literal(self._json_body(body.get("json"))))
            kwargs["data"] = data_code  # type: ignore[assignment]
            kwargs["content_type"] = literal(content_type or "application/json")
        elif kind == "raw":
            if "text" in body:
                kwargs["data"] = literal(body["text"])
            else:
                kwargs["data"] = literal(base64.b64decode(body.get("base64") or ""))
            kwargs["content_type"] = literal(content_type or "application/octet-stream")
            if body.get("truncated"):
                self.plan.notes.append(
                    "the recorded body was cut at MAX_BODY_BYTES; the test sends the part kept"
                )
        headers = {
            k: v
            for k, v in (request.get("headers") or {}).items()
            if k.lower() not in NEVER_HEADERS
            and v != REDACTED
            and (k.lower() in MEANINGFUL_HEADERS or k.lower().startswith(("x-", "hx-")))
        }
        auth = request.get("auth") or {}
        header_codes = {k: literal(v) for k, v in headers.items()}
        if auth.get("scheme") == "basic" and auth.get("username"):
            self.plan.imports.add("import base64")
            credentials = f"{auth['username']}:{TEST_PASSWORD}".encode()
            header_codes["Authorization"] = Code(
                f'"Basic " + base64.b64encode({credentials!r}).decode()'
            )
        if header_codes:
            kwargs["headers"] = headers_code(header_codes)
        if request.get("scheme") == "https":
            kwargs["secure"] = literal(True)
        for code in kwargs.values():
            self.use(code)
        path = self._path(request.get("path") or "/")
        if method not in _CLIENT_METHODS:
            # The test client has no helper for this verb: client.generic(METHOD, path).
            planned = PlannedRequest(
                "generic", Code(f"{method.upper()!r}, {path.text}", path.imports), kwargs
            )
        else:
            planned = PlannedRequest(method, path, kwargs)
        planned.headers = header_codes
        return planned

    def _form(self, form: dict[str, list[str]], index: int) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        username = None
        for key, values in form.items():
            if "csrf" in key.lower():
                continue
            if any(v == REDACTED for v in values):
                if "pass" in key.lower():
                    out[key] = [TEST_PASSWORD for _ in values]
                elif key.lower() in USERNAME_KEYS and (known := self._username_read(index)):
                    # A login form marked sensitive: the user the view loaded.
                    out[key] = [known]
                    username = known
                continue
            out[key] = list(values)
            if key.lower() in USERNAME_KEYS:
                username = values[0] if values else None
        if username and any("pass" in k.lower() for k in out):
            seed = self._user_seed(username)
            if seed is not None:
                self.passwords.add(seed.var)
                self.used_vars.add(seed.var)
        return out

    def _username_read(self, index: int) -> str | None:
        user_model = get_user_model()
        names = {
            row.values.get(user_model.USERNAME_FIELD)
            for row in self.rowset.rows.values()
            if row.model is user_model and row.trace_index == index
        }
        names.discard(None)
        names.discard(REDACTED)
        return names.pop() if len(names) == 1 else None

    def _json_body(self, data: Any) -> Any:
        if isinstance(data, dict):
            return {
                k: (TEST_PASSWORD if v == REDACTED and "pass" in k.lower() else self._json_body(v))
                for k, v in data.items()
                if v != REDACTED or "pass" in k.lower()
            }
        if isinstance(data, list):
            return [self._json_body(v) for v in data]
        return data

    # --- writes ---------------------------------------------------------------------------

    def _final_values(self, writes: list[Write]) -> dict[tuple[str, str], Write]:
        final: dict[tuple[str, str], Write] = {}
        for write in writes:
            if write.op in ("create", "update"):
                previous = final.get(write.key)
                if previous is not None:
                    merged = dict(previous.values)
                    merged.update(write.values)
                    write = Write(
                        previous.op,
                        write.model,
                        write.alias,
                        write.pk,
                        merged,
                        write.event,
                        write.trace_index,
                    )
                final[write.key] = write
        return final

    def _lookups(self, index: int, writes: list[Write]) -> list[LookupStep]:
        lookups: list[LookupStep] = []
        deleted = {w.key for w in writes if w.op == "delete"}
        for key, write in self._final_values(writes).items():
            if write.op != "create" or key in deleted or skip_model(write.model):
                continue
            filters: dict[str, Code] = {}
            for f in write.model._meta.concrete_fields:
                if (
                    f.primary_key
                    or getattr(f, "auto_now", False)
                    or getattr(f, "auto_now_add", False)
                ):
                    continue
                if f.attname not in write.values or isinstance(f, models.FileField):
                    continue
                value = write.values[f.attname]
                if value == REDACTED or getattr(f.remote_field, "parent_link", False):
                    continue
                if isinstance(f, models.DateTimeField) and self._request_time(index, value):
                    continue
                if isinstance(f, models.JSONField) or isinstance(f, models.BinaryField):
                    continue
                if f.is_relation:
                    if value is None:
                        filters[f.name] = literal(None)
                        continue
                    ref = self.ref_code(f.related_model, value)
                    if ref is not None:
                        filters[f.name] = ref
                    continue
                ref = self.generic_ref(write.model, write.values, f.attname)
                if ref is not None:
                    filters[f.name] = ref
                    continue
                decoded = decode_value(value)
                if (decoded is None and f.null) or (decoded == "" and f.blank):
                    continue
                filters[f.name] = from_trace(value, f)
            var = self.new_var(snake(write.model.__name__))
            for code in filters.values():
                self.use(code)
            lookups.append(LookupStep(var, self.model_name(write.model), filters))
            self.created_vars[key] = var
            self.row_state[key] = dict(write.values)
        return lookups


def _logged_in_before(request: dict[str, Any]) -> bool:
    """The user came with the request (a session login), not from a login
    view that ran during it."""
    session = request.get("session")
    return session is None or "_auth_user_id" in session


def _bulk(steps: list[Any]) -> list[Any]:
    """Runs of unnamed rows of one model become one bulk_create: shorter to read."""
    out: list[Any] = []
    run: list[SeedRowStep] = []

    def flush() -> None:
        if len(run) >= BULK_MIN_ROWS:
            out.append(SeedBulkStep(run[0].model, [r.fields for r in run], run[0].using))
        else:
            out.extend(run)
        run.clear()

    for step in steps:
        if (
            isinstance(step, SeedRowStep)
            and not step.assign
            and not step.comment
            and not step.factory
        ):
            if run and (run[0].model, run[0].using) != (step.model, step.using):
                flush()
            run.append(step)
            continue
        flush()
        out.append(step)
    flush()
    return out


_CLIENT_METHODS = {"get", "post", "put", "patch", "delete", "head", "options", "trace"}


def build_plan(context: dict[str, Any]) -> Plan:
    return PlanBuilder(context).build()
