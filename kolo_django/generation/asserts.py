"""Assert: what a generated test checks after each replayed request.

A mixin of ``PlanBuilder`` (build.py): it reads the builder's state (seeds,
rows created earlier in the flow, the latest known values of rows)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from urllib.parse import urlsplit

from django.db import models

from ..trace import decode_value
from .plan import Assertion
from .rows import NEVER_SEEDED, Write, get_model
from .seeds import REDACTED
from .values import Code, from_trace, literal

MAX_JSON_LITERAL = 4000
MAX_DELETE_ASSERTS = 10
MAX_CONTEXT_ASSERTS = 8


class AssertionsMixin:
    """Builds the ``Assertion`` steps of one request block."""

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
                model = get_model(entry["model"])
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
                host = (document.get("request") or {}).get("host") or "testserver"
                if isinstance(value, str) and host != "testserver" and host in value:
                    # The test client's host (get_current_site() names it without django.contrib.sites).
                    value = value.replace(host, "testserver")
                out.append(Assertion("equal", left, from_trace(value)))
        return out

    def _write_assertions(self, writes: list[Write]) -> list[Assertion]:
        out: list[Assertion] = []
        deleted = 0
        refreshed: set[str] = set()
        created_keys = {w.key for w in writes if w.op == "create"}
        for key, write in self._final_values(writes).items():
            if write.op != "update" or key in created_keys or skip_model(write.model):
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
                    ref = self.generic_ref(write.model, self.row_state[key], f.attname)
                    value = ref if ref is not None else from_trace(after, f)
                    out.append(Assertion("equal", Code(f"{var}.{f.name}"), value))
        for write in writes:
            if (
                write.op == "delete"
                and write.key not in created_keys
                and not skip_model(write.model)
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
                related = get_model(write.event.get("related_model") or "")
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


def skip_model(model: type[models.Model]) -> bool:
    """Bookkeeping rows and M2M through rows are never asserted on directly."""
    return model._meta.label_lower in NEVER_SEEDED or bool(model._meta.auto_created)
