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
from .plan import (
    Assertion,
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
)
from .rows import NEVER_SEEDED, RowSet, Write, pk_key
from .seeds import REDACTED, SeedRow, Seeds, natural_reference, snake
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
MAX_JSON_LITERAL = 4000
MAX_DELETE_ASSERTS = 10
USERNAME_KEYS = {"username", "email", "login", "user"}
MAX_CONTEXT_ASSERTS = 8
BULK_MIN_ROWS = 4


class PlanBuilder:
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

    def pk_code(self, model: type[models.Model], value: Any) -> Code | None:
        ref = self.ref_code(model, value)
        if ref is None:
            return None
        if ref.text.isidentifier():
            return Code(f"{ref.text}.pk", ref.imports)
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
        header_codes = [f"{literal(k).text}: {literal(v).text}" for k, v in headers.items()]
        if auth.get("scheme") == "basic" and auth.get("username"):
            self.plan.imports.add("import base64")
            credentials = f"{auth['username']}:{TEST_PASSWORD}".encode()
            header_codes.append(
                f'"Authorization": "Basic " + base64.b64encode({credentials!r}).decode()'
            )
        if header_codes:
            kwargs["headers"] = Code("{" + ", ".join(header_codes) + "}")
        if request.get("scheme") == "https":
            kwargs["secure"] = literal(True)
        for code in kwargs.values():
            self.use(code)
        path = self._path(request.get("path") or "/")
        if method not in _CLIENT_METHODS:
            # The test client has no helper for this verb: client.generic(METHOD, path).
            return PlannedRequest(
                "generic", Code(f"{method.upper()!r}, {path.text}", path.imports), kwargs
            )
        return PlannedRequest(method, path, kwargs)

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
            if write.op != "create" or key in deleted or _skip_model(write.model):
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

    def _assertions(
        self, index: int, document: dict[str, Any], writes: list[Write]
    ) -> list[Assertion]:
        response = document.get("response") or {}
        status = response.get("status_code")
        out: list[Assertion] = [Assertion("equal", Code("response.status_code"), literal(status))]
        location = response.get("redirect")
        if location:
            out.append(Assertion("redirects", Code("response"), self._location(document, location)))
        templates = [
            t
            for t in response.get("templates") or ()
            if not t.startswith(("django/forms", "admin/"))
        ]
        if templates:
            out.append(Assertion("template", Code("response"), literal(templates[0])))
        out.extend(self._context_assertions(document, response.get("context") or {}))
        if "json" in response and status != 204:
            out.extend(self._json_assertions(document, response["json"]))
        out.extend(self._write_assertions(writes))
        out.extend(self._mail_assertions(document))
        out.extend(self._http_assertions(document))
        for a in out:
            self.use(a.left)
            self.use(a.right)
        return out

    def _location(self, document: dict[str, Any], location: str) -> Code:
        parts = urlsplit(location)
        request = document.get("request") or {}
        path = location
        if parts.netloc and parts.netloc == request.get("host"):
            path = parts.path + (f"?{parts.query}" if parts.query else "")
        if not parts.netloc or parts.netloc == request.get("host"):
            code = self._path(parts.path)
            if code.text.startswith("reverse(") and not parts.query:
                return code
        return literal(path)

    def _context_assertions(
        self, document: dict[str, Any], context: dict[str, Any]
    ) -> list[Assertion]:
        """What the view put in the template context: counts, lengths, the
        objects shown, form errors. The HTML itself is not compared."""
        out: list[Assertion] = []
        index = self.documents.index(document)
        for key, entry in context.items():
            if len(out) >= MAX_CONTEXT_ASSERTS:
                break
            left = Code(f"response.context[{key!r}]")
            if "form_errors" in entry:
                out.append(
                    Assertion(
                        "equal",
                        Code(f"response.context[{key!r}].errors"),
                        literal(entry["form_errors"]),
                    )
                )
            elif "length" in entry and entry["length"] is not None:
                out.append(
                    Assertion(
                        "equal", Code(f"len(response.context[{key!r}])"), literal(entry["length"])
                    )
                )
            elif "model" in entry:
                model = _model(entry["model"])
                ref = self.ref_code(model, entry["pk"]) if model is not None else None
                if ref is not None and ref.text.isidentifier():
                    out.append(Assertion("equal", left, ref))
            elif "value" in entry:
                value = entry["value"]
                if isinstance(value, str) and (
                    len(value) > 120 or self._request_time(index, value)
                ):
                    continue
                if isinstance(value, dict) and self._request_time(index, value):
                    continue
                out.append(Assertion("equal", left, from_trace(value)))
        return out

    def _write_assertions(self, writes: list[Write]) -> list[Assertion]:
        out: list[Assertion] = []
        deleted = 0
        refreshed: set[str] = set()
        created_keys = {w.key for w in writes if w.op == "create"}
        for key, write in self._final_values(writes).items():
            if write.op != "update" or key in created_keys or _skip_model(write.model):
                continue
            seed = self.seeds.by_key.get(key)
            if seed is not None:
                var, known = seed.var, seed.fields
                before = self.row_state.get(key, seed.row.values)
            elif key in self.created_vars and key in self.row_state:
                # A row an earlier request of the flow created.
                var, known, before = self.created_vars[key], {}, self.row_state[key]
            else:
                continue
            self.row_state[key] = {**before, **write.values}
            for f in write.model._meta.concrete_fields:
                if f.primary_key or getattr(f, "auto_now", False) or f.attname not in write.values:
                    continue
                after = write.values[f.attname]
                if f.attname in before and decode_value(before[f.attname]) == decode_value(after):
                    continue
                if f.attname not in before and f.attname in known:
                    continue
                if after == REDACTED or isinstance(f, models.FileField):
                    continue
                if isinstance(f, models.DateTimeField) and self._request_time(
                    write.trace_index, after
                ):
                    continue
                if var not in refreshed:
                    refreshed.add(var)
                    out.append(Assertion("refresh", Code(var)))
                if f.is_relation:
                    ref = (
                        self.ref_code(f.related_model, after)
                        if after is not None
                        else literal(None)
                    )
                    if ref is None:
                        out.append(
                            Assertion("equal", Code(f"{var}.{f.attname}"), from_trace(after, f))
                        )
                    else:
                        out.append(Assertion("equal", Code(f"{var}.{f.name}"), ref))
                else:
                    out.append(Assertion("equal", Code(f"{var}.{f.name}"), from_trace(after, f)))
        for write in writes:
            if (
                write.op == "delete"
                and write.key not in created_keys
                and not _skip_model(write.model)
            ):
                seed = self.seeds.by_key.get(write.key)
                if seed is None or deleted >= MAX_DELETE_ASSERTS:
                    continue
                deleted += 1
                name = self.model_name(write.model)
                out.append(
                    Assertion("false", Code(f"{name}.objects.filter(pk={seed.var}.pk).exists()"))
                )
            elif (
                write.op in ("m2m_add", "m2m_remove")
                and not write.event.get("reverse")
                and write.event.get("field")
            ):
                owner = self.ref_code(write.model, write.pk)
                related = _model(write.event.get("related_model"))
                if owner is None or related is None:
                    continue
                for pk in write.event.get("pks") or ():
                    target = self.pk_code(related, pk)
                    if target is None:
                        continue
                    check = Code(
                        f"{owner.text}.{write.event['field']}.filter(pk={target.text}).exists()",
                        target.imports,
                    )
                    out.append(Assertion("true" if write.op == "m2m_add" else "false", check))
        return out

    def _mail_assertions(self, document: dict[str, Any]) -> list[Assertion]:
        mails = [e for e in document.get("events") or () if e.get("type") == "mail"]
        if not mails and not any(
            a.get("type") == "mail" for d in self.documents for a in d.get("events") or ()
        ):
            return []
        self.plan.imports.add("from django.core import mail")
        start = self.mail_seen
        self.mail_seen += len(mails)
        out = [Assertion("equal", Code("len(mail.outbox)"), literal(self.mail_seen))]
        for offset, message in enumerate(mails):
            i = start + offset
            out.append(
                Assertion(
                    "equal", Code(f"mail.outbox[{i}].subject"), literal(message.get("subject"))
                )
            )
            out.append(Assertion("equal", Code(f"mail.outbox[{i}].to"), literal(message.get("to"))))
        return out

    def _http_assertions(self, document: dict[str, Any]) -> list[Assertion]:
        calls = [
            e for e in document.get("events") or () if e.get("type") == "http" and "status" in e
        ]
        if not self.plan.mocks:
            return []
        start = self.http_seen
        self.http_seen += len(calls)
        expected = [(c["method"], c["url"]) for c in calls]
        out = [
            Assertion(
                "equal",
                Code(
                    f"[(c.request.method, c.request.url) for c in responses.calls{f'[{start}:]' if start else ''}]"
                    if self.plan.http_backend == "responses"
                    else f"[(r.method, r.url) for r in {'sent' if start == 0 else f'sent[{start}:]'}]"
                ),
                literal(expected),
            )
        ]
        for offset, call in enumerate(calls):
            sent = call.get("request") or {}
            if "json" in sent:
                self.plan.imports.add("import json")
                out.append(
                    Assertion(
                        "equal",
                        Code(
                            f"json.loads(responses.calls[{start + offset}].request.body)"
                            if self.plan.http_backend == "responses"
                            else f"json.loads(sent[{start + offset}].body)"
                        ),
                        literal(sent["json"]),
                    )
                )
        return out

    def _request_time(self, index: int, value: Any) -> bool:
        """A datetime set while the request ran: the test cannot reproduce it exactly."""
        document = self.documents[index]
        started = decode_value(document.get("started_at"))
        decoded = decode_value(value)
        if not isinstance(started, dt.datetime) or not isinstance(decoded, dt.datetime):
            return False
        end = started + dt.timedelta(milliseconds=float(document.get("duration_ms") or 0) + 1000)
        return started - dt.timedelta(seconds=1) <= decoded <= end

    # --- JSON -----------------------------------------------------------------------------

    def _json_assertions(self, document: dict[str, Any], data: Any) -> list[Assertion]:
        started = decode_value(document.get("started_at"))
        duration = float(document.get("duration_ms") or 0)
        window = (
            (started, started + dt.timedelta(milliseconds=duration + 1000))
            if isinstance(started, dt.datetime)
            else None
        )
        created = {
            key[1]: var for key, var in self.created_vars.items() if self._created_in(key, document)
        }
        host = (document.get("request") or {}).get("host") or "testserver"
        expected = self._json_code(data, created, window, host)
        out: list[Assertion] = []
        if len(expected.text) > MAX_JSON_LITERAL and isinstance(data, list) and data:
            out.append(Assertion("equal", Code("len(response.json())"), literal(len(data))))
            first = self._json_code(data[0], created, window, host)
            out.append(Assertion("equal", Code("response.json()[0]"), first))
        elif len(expected.text) > MAX_JSON_LITERAL and isinstance(data, dict):
            out.append(Assertion("equal", Code("sorted(response.json())"), literal(sorted(data))))
        else:
            out.append(Assertion("equal", Code("response.json()"), expected))
        if any("ANY" in a.right.text for a in out if a.right is not None):
            self.plan.imports.add("from unittest.mock import ANY")
        return out

    def _created_in(self, key: tuple[str, str], document: dict[str, Any]) -> bool:
        index = self.documents.index(document)
        return any(
            w.key == key and w.op == "create" and w.trace_index == index for w in self.rowset.writes
        )

    def _json_code(
        self, value: Any, created: dict[str, str], window: Any, host: str, key: str = ""
    ) -> Code:
        if isinstance(value, dict):
            parts = [
                f"{literal(k).text}: {self._json_code(v, created, window, host, k).text}"
                for k, v in value.items()
            ]
            return Code("{" + ", ".join(parts) + "}")
        if isinstance(value, list):
            return Code(
                "["
                + ", ".join(self._json_code(v, created, window, host, key).text for v in value)
                + "]"
            )
        if isinstance(value, bool) or value is None:
            return literal(value)
        if (
            isinstance(value, int)
            and (key in ("id", "pk") or key.endswith("_id"))
            and str(value) in created
        ):
            self.used_vars.add(created[str(value)])
            return Code(f"{created[str(value)]}.pk")
        if isinstance(value, str):
            if window is not None and _in_window(value, window):
                # A timestamp taken while the request ran: the test's clock
                # (frozen at the trace's start, or not frozen) cannot match it.
                return Code("ANY")
            text = value
            if host != "testserver" and f"//{host}" in text:
                text = text.replace(f"//{host}", "//testserver")
            for pk, var in created.items():
                pattern = re.compile(rf"(?<=/){re.escape(pk)}(?=/)")
                if pattern.search(text):
                    self.used_vars.add(var)
                    escaped = text.replace("{", "{{").replace("}", "}}")
                    return Code("f" + repr(pattern.sub("{" + var + ".pk}", escaped)))
            return literal(text)
        return literal(value)


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


def _in_window(value: str, window: tuple[dt.datetime, dt.datetime]) -> bool:
    if len(value) < 19 or not value[:4].isdigit() or value[4] != "-":
        return False
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    if parsed.tzinfo is None:
        return False
    start, end = window
    return start - dt.timedelta(seconds=1) <= parsed <= end


def _skip_model(model: type[models.Model]) -> bool:
    return model._meta.label_lower in NEVER_SEEDED or bool(model._meta.auto_created)


def _model(label: str | None) -> type[models.Model] | None:
    from .rows import get_model

    return get_model(label or "")


_CLIENT_METHODS = {"get", "post", "put", "patch", "delete", "head", "options", "trace"}


def build_plan(context: dict[str, Any]) -> Plan:
    return PlanBuilder(context).build()
