"""The admin face of stored traces: a list that never decompresses a document,
a read-only detail page with the request, the response and a paginated event
timeline, and test generation (view, copy, download, verify).

Everything here reads traces through ``storage`` and the trace document; the
only write paths are the delete and prune actions.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import time
from dataclasses import dataclass
from typing import Any

import sqlparse
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.utils import quote, unquote
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseRedirect,
)
from django.template.defaultfilters import filesizeformat
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import dateformat, timezone
from django.utils.html import format_html
from django.utils.http import content_disposition_header, urlencode
from django.utils.translation import gettext

from . import storage, trace
from .conf import get_config
from .generation.api import GenerationError, generate
from .generation.naming import view_words
from .generation.render import TemplateProblem
from .generation.style import detect_style
from .generation.verify import project_root, verify
from .models import Trace

logger = logging.getLogger(__name__)

STYLES = ("unittest", "pytest")
EVENTS_PER_PAGE = 200
# Caps that keep a page of a large trace small and quick to render.
MAX_VALUE_CHARS = 300  # one table cell, local variable or parameter
MAX_BLOCK_CHARS = 20_000  # a body, a traceback, a formatted SQL statement
MAX_TABLE_ROWS = 20  # rows shown per sql/orm event
MAX_LOCALS_SHOWN = 40
MAX_SQL_FORMAT_CHARS = 5_000  # longer statements are shown as recorded
# sqlparse takes 1-5 ms a statement: past this much formatting in one request,
# statements not formatted before are shown as recorded.
SQL_FORMAT_BUDGET_S = 0.25
MAX_TRACES_PER_TEST = 50
VERIFY_TIMEOUT_S = 300
MAX_VERIFY_OUTPUT_CHARS = 30_000
TRACE_ID_PREFIX_RE = re.compile(r"^trc_[0-9a-z]{1,26}$", re.IGNORECASE)


# ---------------------------------------------------------------- changelist


class StatusClassFilter(admin.SimpleListFilter):
    title = "status class"
    parameter_name = "status_class"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [
            ("2xx", "2xx success"),
            ("3xx", "3xx redirect"),
            ("4xx", "4xx client error"),
            ("5xx", "5xx server error"),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Trace]) -> QuerySet[Trace]:
        value = self.value()
        if value not in ("2xx", "3xx", "4xx", "5xx"):
            return queryset
        low = int(value[0]) * 100
        return queryset.filter(status_code__gte=low, status_code__lt=low + 100)


@admin.register(Trace)
class TraceAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "method",
        "short_path",
        "status",
        "duration",
        "queries",
        "stored_size",
        "created",
    )
    list_display_links = ("id",)
    list_filter = ("method", StatusClassFilter, "created_at", "view_name")
    search_fields = ("path",)
    search_help_text = "A path fragment, or a trace id (trc_…, or its beginning)."
    ordering = ("-created_at", "-id")
    list_per_page = 100
    show_full_result_count = False
    actions = ("generate_test", "prune_traces")
    change_list_template = "admin/kolo_django/trace/change_list.html"
    detail_template = "admin/kolo_django/trace/detail.html"

    class Media:
        css = {"all": ("kolo_django/admin.css",)}
        js = ("kolo_django/admin.js",)

    # The list and every action start here: documents stay in the database.
    def get_queryset(self, request: HttpRequest) -> QuerySet[Trace]:
        return super().get_queryset(request).using(storage.alias()).defer("document")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Trace], search_term: str
    ) -> tuple[QuerySet[Trace], bool]:
        term = search_term.strip()
        if TRACE_ID_PREFIX_RE.match(term):
            # Ids are "trc_" + upper-case Crockford base32; accept any case.
            return queryset.filter(id__startswith="trc_" + term[4:].upper()), False
        return super().get_search_results(request, queryset, search_term)

    def action_checkbox(self, obj: Trace) -> str:
        # The admin renders a form widget through the template engine for each
        # row, most of a 100-row page's time; the same markup, directly.
        return format_html(
            '<input type="checkbox" name="{}" value="{}" class="action-select" aria-label="{}">',
            ACTION_CHECKBOX_NAME,
            obj.pk,
            format_html(gettext("Select this object for an action - {}"), str(obj)),
        )

    @admin.display(description="path", ordering="path")
    def short_path(self, obj: Trace) -> str:
        return obj.path if len(obj.path) <= 80 else obj.path[:79] + "…"

    @admin.display(description="status", ordering="status_code")
    def status(self, obj: Trace) -> str:
        if obj.status_code is None:
            return "–"
        return format_html(
            '<span class="kolo-status kolo-status-{}xx">{}</span>',
            obj.status_code // 100,
            obj.status_code,
        )

    @admin.display(description="queries", ordering="query_count")
    def queries(self, obj: Trace) -> int:
        return obj.query_count

    @admin.display(description="duration", ordering="duration_ms")
    def duration(self, obj: Trace) -> str:
        return f"{obj.duration_ms:.1f} ms"

    @admin.display(description="size", ordering="size")
    def stored_size(self, obj: Trace) -> str:
        return filesizeformat(obj.size)

    @admin.display(description="created", ordering="created_at")
    def created(self, obj: Trace) -> str:
        return dateformat.format(timezone.localtime(obj.created_at), "Y-m-d H:i:s")

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        extra = {"prune_url": self._url("prune") if self.has_delete_permission(request) else ""}
        return super().changelist_view(request, {**extra, **(extra_context or {})})

    def response_delete(self, request: HttpRequest, obj_display: str, obj_id: Any) -> Any:
        # The default goes to the admin index when change is not allowed.
        response = super().response_delete(request, obj_display, obj_id)
        if isinstance(response, HttpResponseRedirect) and self.has_view_permission(request):
            return HttpResponseRedirect(self._url("changelist"))
        return response

    # ------------------------------------------------------------------ urls

    def get_urls(self) -> list[URLPattern]:
        prefix = f"{self.opts.app_label}_{self.opts.model_name}"
        view = self.admin_site.admin_view
        custom = [
            path("prune/", view(self.prune_view), name=f"{prefix}_prune"),
            path("download/", view(self.download_view), name=f"{prefix}_download_many"),
            path(
                "<path:object_id>/download/",
                view(self.download_view),
                name=f"{prefix}_download",
            ),
        ]
        return custom + super().get_urls()

    def _url(self, name: str, *args: Any) -> str:
        return reverse(
            f"admin:{self.opts.app_label}_{self.opts.model_name}_{name}",
            args=args,
            current_app=self.admin_site.name,
        )

    def _require_view(self, request: HttpRequest) -> None:
        if not self.has_view_permission(request):
            raise PermissionDenied

    # ----------------------------------------------------------- detail page

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        self._require_view(request)
        if request.method not in ("GET", "HEAD", "POST"):
            return HttpResponse(status=405)
        try:
            obj = storage.get_trace(unquote(object_id))
        except LookupError:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        document, load_error = _load(obj)
        data = request.POST if request.method == "POST" else request.GET
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"{obj.method} {obj.path}",
            "subtitle": obj.id,
            "original": obj,
            "trace": obj,
            "load_error": load_error,
            "has_view_permission": True,
            "has_delete_permission": self.has_delete_permission(request, obj),
            "media": self.media,
            "styles": STYLES,
            "form_hidden": [],
            **(extra_context or {}),
        }
        if document is not None:
            context.update(
                request_info=present_request(document.get("request") or {}),
                response_info=present_response(document.get("response") or {}),
                exception=document.get("exception"),
                faults=document.get("faults") or [],
                dropped_events=document.get("dropped_events") or 0,
                timeline=build_timeline(
                    document.get("events") or [], data.get("page"), data.get("type")
                ),
            )
            context.update(
                self._generation(
                    request,
                    [document],
                    data.get("style"),
                    verify_asked=request.method == "POST" and bool(data.get("verify")),
                    download_url=self._url("download", quote(obj.pk)),
                )
            )
        request.current_app = self.admin_site.name
        return TemplateResponse(request, self.detail_template, context)

    def _generation(
        self,
        request: HttpRequest,
        documents: list[dict[str, Any]],
        style: str | None,
        *,
        verify_asked: bool,
        download_url: str,
        download_ids: list[str] = (),  # type: ignore[assignment]
    ) -> dict[str, Any]:
        """The context of the "Generate test" panel: the chosen style, and the
        code (and its verification) once a style was asked for."""
        panel: dict[str, Any] = {"style": style if style in STYLES else default_style()}
        panel["generated"] = None
        if style not in STYLES:
            return panel
        source, notes, error = generate_source(documents, style)
        query = urlencode([("id", pk) for pk in download_ids] + [("style", style)])
        panel["generated"] = {
            "source": source,
            "notes": notes,
            "error": error,
            "download_url": f"{download_url}?{query}",
            "lines": source.count("\n"),
        }
        if source and verify_asked:
            result = verify(source, style, timeout=VERIFY_TIMEOUT_S)
            output = result.output
            if len(output) > MAX_VERIFY_OUTPUT_CHARS:
                output = "…\n" + output[-MAX_VERIFY_OUTPUT_CHARS:]
            panel["generated"]["verification"] = {
                "passed": result.passed,
                "output": output,
                "command": " ".join(result.command),
            }
        return panel

    # -------------------------------------------------------------- download

    def download_view(self, request: HttpRequest, object_id: str | None = None) -> HttpResponse:
        """The generated test as a .py attachment: one trace (``<id>/download/``)
        or several (``download/?id=…&id=…``, replayed oldest first)."""
        self._require_view(request)
        style = request.GET.get("style") or default_style()
        if style not in STYLES:
            return HttpResponseBadRequest(f"unknown style {style!r}; use unittest or pytest")
        ids = [unquote(object_id)] if object_id else request.GET.getlist("id")
        if not ids or len(ids) > MAX_TRACES_PER_TEST:
            return HttpResponseBadRequest(f"give between 1 and {MAX_TRACES_PER_TEST} trace ids")
        rows = list(
            Trace.objects.using(storage.alias()).filter(pk__in=ids).order_by("created_at", "id")
        )
        if len(rows) != len(set(ids)):
            missing = sorted(set(ids) - {row.pk for row in rows})
            return HttpResponse(f"no trace with id {', '.join(missing)}", status=404)
        documents = []
        for row in rows:
            document, load_error = _load(row)
            if document is None:
                return HttpResponse(f"trace {row.pk}: {load_error}", status=422)
            documents.append(document)
        source, _notes, error = generate_source(documents, style)
        if error:
            return HttpResponse(error, status=422, content_type="text/plain; charset=utf-8")
        response = HttpResponse(source, content_type="text/x-python; charset=utf-8")
        response["Content-Disposition"] = content_disposition_header(
            True, download_file_name(documents)
        )
        return response

    # --------------------------------------------------------------- actions

    @admin.action(description="Generate one test from the selected traces", permissions=["view"])
    def generate_test(self, request: HttpRequest, queryset: QuerySet[Trace]) -> HttpResponse:
        ids = list(queryset.order_by("created_at", "id").values_list("id", flat=True))
        if len(ids) > MAX_TRACES_PER_TEST:
            self.message_user(
                request,
                f"Select at most {MAX_TRACES_PER_TEST} traces to make one test.",
                messages.WARNING,
            )
            return HttpResponseRedirect(request.get_full_path())
        rows = list(
            Trace.objects.using(storage.alias()).filter(pk__in=ids).order_by("created_at", "id")
        )
        documents, problems = [], []
        for row in rows:
            document, load_error = _load(row)
            if document is None:
                problems.append(f"{row.pk}: {load_error}")
            else:
                documents.append(document)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Generate a test from {len(ids)} trace{'s' if len(ids) != 1 else ''}",
            "traces": rows,
            "problems": problems,
            "styles": STYLES,
            "form_hidden": [("action", "generate_test")]
            + [(ACTION_CHECKBOX_NAME, pk) for pk in ids],
            "media": self.media,
            "style": default_style(),
            "generated": None,
        }
        if not problems:
            # Coming from the changelist there is no style yet: use the project's.
            context.update(
                self._generation(
                    request,
                    documents,
                    request.POST.get("style") or default_style(),
                    verify_asked=bool(request.POST.get("verify")),
                    download_url=self._url("download_many"),
                    download_ids=ids,
                )
            )
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/kolo_django/trace/generate_many.html", context)

    @admin.action(description="Prune traces beyond the retention limits…", permissions=["delete"])
    def prune_traces(self, request: HttpRequest, queryset: QuerySet[Trace]) -> HttpResponse:
        # Pruning applies the retention settings to all traces, not to a selection.
        return HttpResponseRedirect(self._url("prune"))

    def prune_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_delete_permission(request):
            raise PermissionDenied
        if request.method == "POST":
            deleted = storage.prune()
            self.message_user(
                request,
                f"Pruned {deleted} trace{'' if deleted == 1 else 's'} beyond the retention limits.",
                messages.SUCCESS,
            )
            return HttpResponseRedirect(self._url("changelist"))
        config = get_config()
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Prune traces",
            "max_traces": config["RETENTION_MAX_TRACES"],
            "max_age_days": config["RETENTION_MAX_AGE_DAYS"],
            "would_delete": prune_count(),
            "total": Trace.objects.using(storage.alias()).count(),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/kolo_django/trace/prune.html", context)


# ------------------------------------------------------ generation helpers


def default_style() -> str:
    """The TEST_STYLE setting, with "auto" resolved from the project's runner."""
    style = get_config().get("TEST_STYLE", "auto")
    return style if style in STYLES else detect_style(project_root())


def generate_source(documents: list[dict[str, Any]], style: str) -> tuple[str, list[str], str]:
    """(source, notes, error): error is a one-line reason when nothing was made."""
    try:
        source, context = generate(documents, style=style)
    except (GenerationError, TemplateProblem) as exc:
        return "", [], str(exc)
    except Exception as exc:  # a generator bug must not hide the trace page
        logger.exception("kolo_django: generating a test failed")
        return "", [], f"generation failed: {type(exc).__name__}: {exc}"
    return source, [str(note) for note in context.get("skipped", [])], ""


def download_file_name(documents: list[dict[str, Any]]) -> str:
    words = "_".join(w.lower() for w in view_words(documents[0]))[:60] or "view"
    return f"test_{words}.py"


def prune_count() -> int:
    """How many traces ``storage.prune()`` would delete now."""
    config = get_config()
    queryset = Trace.objects.using(storage.alias())
    total = queryset.count()
    kept = total
    if config["RETENTION_MAX_AGE_DAYS"] is not None:
        cutoff = timezone.now() - dt.timedelta(days=config["RETENTION_MAX_AGE_DAYS"])
        kept = queryset.filter(created_at__gte=cutoff).count()
    if config["RETENTION_MAX_TRACES"] is not None:
        kept = min(kept, config["RETENTION_MAX_TRACES"])
    return total - kept


def _load(obj: Trace) -> tuple[dict[str, Any] | None, str]:
    try:
        return obj.load_document(), ""
    except trace.TraceFormatError as exc:
        return None, str(exc)


# --------------------------------------------------------- presenting values


def clip(text: str, limit: int = MAX_VALUE_CHARS) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit} more characters)"


def plain(value: Any) -> Any:
    """A document value with its tags replaced by their text, for display."""
    if isinstance(value, list):
        return [plain(item) for item in value]
    if isinstance(value, dict):
        tag = value.get("$t")
        if tag is None:
            return {k: plain(v) for k, v in value.items()}
        raw = value.get("v")
        if tag == "dict":
            return {k: plain(v) for k, v in (raw or {}).items()}
        if tag == "bytes":
            return f"<bytes, base64 {raw}>"
        return raw
    return value


def show(value: Any, limit: int = MAX_VALUE_CHARS) -> str:
    """One value as a short line of text."""
    value = plain(value)
    if isinstance(value, str):
        text = value
    elif value is None or isinstance(value, (bool, int, float)):
        text = str(value)
    else:
        text = json.dumps(value, ensure_ascii=False, default=str)
    return clip(text, limit)


def pretty(value: Any) -> str:
    return clip(
        json.dumps(plain(value), indent=2, ensure_ascii=False, default=str), MAX_BLOCK_CHARS
    )


def pairs(mapping: Any, limit: int = MAX_VALUE_CHARS) -> list[tuple[str, str]]:
    if not isinstance(mapping, dict):
        return []
    return [(str(k), show(v, limit)) for k, v in mapping.items()]


def table(rows: Any) -> tuple[list[list[str]], int]:
    """The first rows as cells of text, and how many rows were left out."""
    if not isinstance(rows, list):
        return [], 0
    shown = [
        [show(cell) for cell in row] if isinstance(row, list) else [show(row)]
        for row in rows[:MAX_TABLE_ROWS]
    ]
    return shown, max(0, len(rows) - MAX_TABLE_ROWS)


class SqlFormatter:
    """``sqlparse`` with a shared cache and a time budget per page."""

    cache: dict[str, str] = {}
    CACHE_SIZE = 4096

    def __init__(self, budget_s: float = SQL_FORMAT_BUDGET_S) -> None:
        self.deadline = time.perf_counter() + budget_s
        self.skipped = 0

    def __call__(self, sql: str) -> str:
        cached = self.cache.get(sql)
        if cached is not None:
            return cached
        if len(sql) > MAX_SQL_FORMAT_CHARS or time.perf_counter() > self.deadline:
            self.skipped += 1
            return clip(sql, MAX_BLOCK_CHARS)
        formatted = clip(
            sqlparse.format(sql, reindent=True, keyword_case="upper").strip(), MAX_BLOCK_CHARS
        )
        if len(self.cache) >= self.CACHE_SIZE:
            self.cache.clear()
        self.cache[sql] = formatted
        return formatted


def one_line(text: str, limit: int = 160) -> str:
    return clip(" ".join(text.split()), limit)


# ---------------------------------------------------- request and response


def user_summary(user: Any) -> str:
    if not isinstance(user, dict):
        return "unknown (no authentication middleware)"
    if not user.get("authenticated"):
        return "anonymous"
    text = (
        f"{user.get('username') or '?'} (pk {show(user.get('pk'))}, {user.get('model') or 'user'})"
    )
    return text


def present_body(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        return {"kind": "none"}
    kind = body.get("kind") or "none"
    out: dict[str, Any] = {"kind": kind}
    if kind in ("form", "multipart"):
        out["form"] = [
            (str(k), ", ".join(show(v) for v in (vs if isinstance(vs, list) else [vs])))
            for k, vs in (body.get("form") or {}).items()
        ]
        out["files"] = [
            {
                "field": f.get("field"),
                "name": f.get("name"),
                "content_type": f.get("content_type"),
                "size": f.get("size"),
            }
            for f in body.get("files") or []
            if isinstance(f, dict)
        ]
        out["error"] = body.get("error")
    elif kind == "json":
        out["text"] = pretty(body.get("json"))
        out["size"] = body.get("size")
    elif kind == "raw":
        out["size"] = body.get("size")
        out["truncated"] = body.get("truncated")
        if "text" in body:
            out["text"] = clip(str(body.get("text") or ""), MAX_BLOCK_CHARS)
        else:
            out["text"] = "(binary, not shown)"
    elif kind == "unreadable":
        out["error"] = body.get("error")
    return out


def present_request(request: dict[str, Any]) -> dict[str, Any]:
    resolver = request.get("resolver") or {}
    query_string = request.get("query_string") or ""
    return {
        "method": request.get("method") or "",
        "url": "{}{}{}".format(
            f"{request.get('scheme') or 'http'}://{request['host']}" if request.get("host") else "",
            request.get("path") or "",
            f"?{query_string}" if query_string else "",
        ),
        "view": resolver.get("view") or "",
        "view_name": resolver.get("view_name") or "",
        "route": resolver.get("route") or "",
        "arguments": pairs(resolver.get("kwargs"))
        + [(str(i), show(v)) for i, v in enumerate(resolver.get("args") or [])],
        "user": user_summary(request.get("user")),
        "auth": (request.get("auth") or {}).get("scheme"),
        "query": [
            (str(k), ", ".join(str(v) for v in (vs if isinstance(vs, list) else [vs])))
            for k, vs in (request.get("query") or {}).items()
        ],
        "headers": pairs(request.get("headers"), MAX_BLOCK_CHARS),
        "content_type": request.get("content_type") or "",
        "body": present_body(request.get("body")),
        "session": pairs(request.get("session")),
    }


def present_response(response: dict[str, Any]) -> dict[str, Any]:
    status = response.get("status_code")
    content = response.get("content")
    if content is None and response.get("content_base64"):
        content = "(binary content, not shown)"
    context = []
    for name, entry in (response.get("context") or {}).items():
        if not isinstance(entry, dict):
            continue
        if "value" in entry:
            text = show(entry["value"])
        elif "model" in entry:
            text = f"<{entry['model']} pk={show(entry.get('pk'))}>"
        elif "form_errors" in entry:
            text = "form errors: " + show(entry["form_errors"])
        elif "page" in entry:
            text = f"page {entry.get('page')} ({entry.get('length')} items)"
        else:
            text = f"{entry.get('length')} items"
        context.append((str(name), text))
    return {
        "status_code": status,
        "status_class": f"{status // 100}xx" if isinstance(status, int) else "",
        "reason": response.get("reason") or "",
        "content_type": response.get("content_type") or "",
        "redirect": response.get("redirect"),
        "headers": pairs(response.get("headers"), MAX_BLOCK_CHARS),
        "cookies": response.get("cookies") or [],
        "templates": response.get("templates") or [],
        "context": context,
        "streaming": response.get("streaming"),
        "size": response.get("size"),
        "json": pretty(response["json"]) if "json" in response else None,
        "content": clip(str(content), MAX_BLOCK_CHARS) if content is not None else None,
        "content_truncated": response.get("content_truncated"),
    }


# ---------------------------------------------------------------- timeline


def build_timeline(events: list[Any], page_number: Any, type_filter: Any) -> dict[str, Any]:
    """One page of events, each made ready for the template, with the depth
    of the call it happened in."""
    events = [e for e in events if isinstance(e, dict)]
    depths, calls = call_depths(events)
    counts: dict[str, int] = {}
    for event in events:
        kind = str(event.get("type"))
        counts[kind] = counts.get(kind, 0) + 1
    type_filter = type_filter if type_filter in counts else ""
    indexed = [
        (i, e) for i, e in enumerate(events) if not type_filter or e.get("type") == type_filter
    ]
    page = Paginator(indexed, EVENTS_PER_PAGE).get_page(page_number)
    tools = _PageTools(calls, SqlFormatter())
    shown = [present_event(i, e, depths[i], tools) for i, e in page.object_list]
    return {
        "events": shown,
        "page": page,
        "page_range": list(page.paginator.get_elided_page_range(page.number, on_each_side=2)),
        "counts": sorted(counts.items(), key=lambda kv: -kv[1]),
        "total": len(events),
        "type": type_filter,
        "sql_unformatted": tools.format_sql.skipped,
    }


def call_depths(events: list[dict[str, Any]]) -> tuple[list[int], dict[Any, dict[str, Any]]]:
    """Each event's indentation: a call's own depth, a return at its call's,
    anything else one deeper than the innermost open call."""
    calls: dict[Any, dict[str, Any]] = {}
    open_ids: list[Any] = []
    depths = []
    for event in events:
        kind = event.get("type")
        if kind == "call":
            calls[event.get("id")] = event
            open_ids.append(event.get("id"))
            depths.append(_int(event.get("depth")))
        elif kind == "return":
            call = calls.get(event.get("id"))
            depths.append(_int(call.get("depth")) if call else 0)
            if open_ids and open_ids[-1] == event.get("id"):
                open_ids.pop()
            elif event.get("id") in open_ids:  # another thread's call returned
                open_ids.remove(event.get("id"))
        else:
            depths.append(_int(calls[open_ids[-1]].get("depth")) + 1 if open_ids else 0)
    return depths, calls


def _int(value: Any) -> int:
    return value if isinstance(value, int) and value >= 0 else 0


@dataclass
class _PageTools:
    """What presenting one event may need beyond the event itself."""

    calls: dict[Any, dict[str, Any]]  # call events by id, for their returns
    format_sql: SqlFormatter


def present_event(
    index: int, event: dict[str, Any], depth: int, page: _PageTools
) -> dict[str, Any]:
    kind = str(event.get("type"))
    t = event.get("t")
    out: dict[str, Any] = {
        "n": index + 1,
        "type": kind,
        "t": f"{t:.1f}" if isinstance(t, (int, float)) else "",
        "indent": min(depth, 40),
    }
    present = PRESENTERS.get(kind, _present_other)
    out.update(present(event, page))
    return out


def _present_sql(event: dict[str, Any], page: _PageTools) -> dict[str, Any]:
    sql = str(event.get("sql") or "")
    params = event.get("params")
    if isinstance(params, dict) and "batches" in params:
        params = params.get("batches")
    rows, rows_hidden = table(event.get("rows"))
    return {
        "summary": one_line(sql),
        "sql": page.format_sql(sql),
        "statement": event.get("statement") or "",
        "alias": event.get("alias") or "",
        "origin": event.get("origin") or "",
        "duration": event.get("duration_ms"),
        "params": show(params, MAX_BLOCK_CHARS) if params not in (None, []) else "",
        "many": event.get("many"),
        "error": event.get("error"),
        "rowcount": event.get("rowcount"),
        "columns": [str(c) for c in event.get("columns") or []],
        "rows": rows,
        "rows_hidden": rows_hidden,
        "rows_read": event.get("rows_read"),
        "has_rows": "columns" in event,
        "rows_in_orm": event.get("rows_in") == "orm",
    }


def _present_orm(event: dict[str, Any], page: _PageTools) -> dict[str, Any]:
    rows = event.get("rows") or []
    shown, hidden = table(rows)
    return {
        "model": event.get("model") or "",
        "source": event.get("source") or "",
        "alias": event.get("alias") or "",
        "fields": [str(f) for f in event.get("fields") or []],
        "rows": shown,
        "rows_hidden": hidden,
        "row_count": len(rows) if isinstance(rows, list) else 0,
    }


def _present_write(event: dict[str, Any], page: _PageTools) -> dict[str, Any]:
    return {
        "op": event.get("op") or "",
        "model": event.get("model") or "",
        "pk": show(event.get("pk")),
        "values": pairs(event.get("values")),
        "field": event.get("field"),
        "related_model": event.get("related_model"),
        "pks": show(event.get("pks")) if "pks" in event else "",
    }


def _http_body(body: Any) -> str:
    if not isinstance(body, dict) or not body:
        return ""
    if "json" in body:
        return pretty(body["json"])
    if "body" in body:
        return clip(str(body["body"]), MAX_BLOCK_CHARS)
    if "body_base64" in body:
        return f"(binary, {body.get('size')} bytes)"
    return str(body.get("body_note") or "")


def _present_http(event: dict[str, Any], page: _PageTools) -> dict[str, Any]:
    return {
        "library": event.get("library") or "",
        "method": event.get("method") or "",
        "url": clip(str(event.get("url") or ""), 500),
        "status": event.get("status"),
        "error": event.get("error"),
        "duration": event.get("duration_ms"),
        "request_headers": pairs(event.get("request_headers")),
        "response_headers": pairs(event.get("response_headers")),
        "request_body": _http_body(event.get("request")),
        "response_body": _http_body(event.get("response")),
    }


def _present_mail(event: dict[str, Any], page: _PageTools) -> dict[str, Any]:
    def addresses(key: str) -> str:
        return ", ".join(str(a) for a in event.get(key) or [])

    return {
        "subject": show(event.get("subject") or ""),
        "from_email": show(event.get("from_email") or ""),
        "to": addresses("to"),
        "cc": addresses("cc"),
        "bcc": addresses("bcc"),
        "body": clip(str(event.get("body") or ""), MAX_BLOCK_CHARS),
        "attachments": [str(a) for a in event.get("attachments") or []],
    }


def _present_log(event: dict[str, Any], page: _PageTools) -> dict[str, Any]:
    return {
        "logger": event.get("logger") or "",
        "level": str(event.get("level") or ""),
        "message": clip(str(event.get("message") or ""), MAX_BLOCK_CHARS),
        "location": event.get("location") or "",
        "exception": event.get("exception"),
    }


def _present_exception(event: dict[str, Any], page: _PageTools) -> dict[str, Any]:
    return {
        "exception_type": event.get("exception_type") or "",
        "message": clip(str(event.get("message") or ""), MAX_BLOCK_CHARS),
        "traceback": clip(str(event.get("traceback") or ""), MAX_BLOCK_CHARS),
    }


def _present_template(event: dict[str, Any], page: _PageTools) -> dict[str, Any]:
    return {"name": event.get("name") or ""}


def _locals(event: dict[str, Any]) -> list[tuple[str, str]]:
    return pairs(dict(list((event.get("locals") or {}).items())[:MAX_LOCALS_SHOWN]))


def _present_call(event: dict[str, Any], page: _PageTools) -> dict[str, Any]:
    return {
        "function": event.get("function") or "",
        "module": event.get("module") or "",
        "where": ":".join(
            str(part) for part in (event.get("file"), event.get("line")) if part is not None
        ),
        "locals": _locals(event) if isinstance(event.get("locals"), dict) else [],
    }


def _present_return(event: dict[str, Any], page: _PageTools) -> dict[str, Any]:
    call = page.calls.get(event.get("id")) or {}
    return {
        "function": call.get("function") or "?",
        "value": show(event.get("value")) if "value" in event else None,
        "exception": event.get("exception"),
        "locals": _locals(event) if isinstance(event.get("locals"), dict) else [],
    }


def _present_other(event: dict[str, Any], page: _PageTools) -> dict[str, Any]:
    rest = {k: v for k, v in event.items() if k not in ("type", "t")}
    return {"data": show(rest, 1000)}


PRESENTERS = {
    "sql": _present_sql,
    "orm": _present_orm,
    "write": _present_write,
    "http": _present_http,
    "mail": _present_mail,
    "log": _present_log,
    "exception": _present_exception,
    "template": _present_template,
    "call": _present_call,
    "return": _present_return,
}
