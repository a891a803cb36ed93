"""Patches that feed the current recorder; each one is a no-op when no
request is being recorded, and never lets a fault of ours escape."""

from __future__ import annotations

import functools
import logging
from typing import Any

from .recorder import current, fault
from .redact import collect

logger = logging.getLogger("kolo_django")


def guarded(kind: str, func: Any, *args: Any, **kwargs: Any) -> Any:
    """``func``'s result; None when it faulted."""
    recorder = current()
    try:
        return func(*args, **kwargs)
    except Exception:
        fault(kind, recorder)
        return None


# --- ORM -------------------------------------------------------------------------------


def install_orm() -> None:
    from django.db.models import query as query_module
    from django.db.models.sql import compiler, query

    from .orm import install_from_db, record_query_backing_rows

    install_from_db()

    def mark_orm(original: Any) -> Any:
        @functools.wraps(original)
        def execute_sql(self: Any, *args: Any, **kwargs: Any) -> Any:
            recorder = current()
            if recorder is None:
                return original(self, *args, **kwargs)
            recorder.orm_depth += 1
            previous, recorder.orm_compiler = recorder.orm_compiler, self
            try:
                return original(self, *args, **kwargs)
            finally:
                recorder.orm_depth -= 1
                recorder.orm_compiler = previous

        execute_sql._kolo_django = True
        return execute_sql

    for cls in (compiler.SQLCompiler, compiler.SQLInsertCompiler):
        if not getattr(cls.execute_sql, "_kolo_django", False):
            cls.execute_sql = mark_orm(cls.execute_sql)

    def with_backing(
        original: Any, include_base: bool, from_iterable: bool, first_only: bool = False
    ) -> Any:
        @functools.wraps(original)
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            recorder = current()
            if recorder is not None and recorder.mode is None:
                if from_iterable:
                    q, using = self.queryset.query, self.queryset.db
                else:
                    q, using = self, args[0] if args else kwargs.get("using")
                links = guarded(
                    "backing rows",
                    record_query_backing_rows,
                    q,
                    using,
                    include_base=include_base,
                    first_only=first_only,
                )
                if links is not None:
                    return _with_links(original(self, *args, **kwargs), links)
            return original(self, *args, **kwargs)

        wrapper._kolo_django = True
        return wrapper

    targets = [
        (query.Query, "get_aggregation", True, False, False),
        (query.Query, "has_results", True, False, True),
        (query_module.ValuesIterable, "__iter__", True, True, False),
        (query_module.ValuesListIterable, "__iter__", True, True, False),
        (query_module.NamedValuesListIterable, "__iter__", True, True, False),
        (query_module.FlatValuesListIterable, "__iter__", True, True, False),
        # Model rows come through from_db; tables joined for filtering or for
        # M2M links need their rows too.
        (query_module.ModelIterable, "__iter__", False, True, False),
    ]
    for cls, name, include_base, from_iterable, first_only in targets:
        original = cls.__dict__[name]
        if not getattr(original, "_kolo_django", False):
            setattr(cls, name, with_backing(original, include_base, from_iterable, first_only))


def _with_links(objects: Any, links: Any) -> Any:
    """The model instances, each one's M2M link row recorded as it is read."""
    for obj in objects:
        try:
            links.add(obj)
        except Exception:
            fault("backing rows", links.recorder)
        yield obj


# --- Session, templates ----------------------------------------------------------------


def install_session() -> None:
    from django.contrib.sessions.backends.base import SessionBase

    from ..trace import encode_value
    from .redact import redact_mapping

    original = SessionBase.__dict__["_session"].fget
    if getattr(original, "_kolo_django", False):
        return

    def _get_session(self: Any, no_load: bool = False) -> Any:
        first = not hasattr(self, "_session_cache")
        result = original(self, no_load)
        if first:
            recorder = current()
            if recorder is not None and recorder.session_before is None:
                try:
                    if self.session_key:
                        recorder.secrets.add(self.session_key)
                    # _auth_user_hash and the like: hidden, and scrubbed wherever else they appear.
                    recorder.session_before = redact_mapping(
                        {str(k): encode_value(v) for k, v in result.items()}, recorder.secrets
                    )
                except Exception:
                    fault("session", recorder)
        return result

    _get_session._kolo_django = True
    SessionBase._session = property(_get_session)  # type: ignore[assignment]


# --- Secrets made during the request ------------------------------------------------------


def _remember(value: Any) -> None:
    recorder = current()
    if recorder is not None:
        collect(value, recorder.secrets)


def _remembering(original: Any) -> Any:
    """Wrap a function whose return value is a secret, to scrub it everywhere."""

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        value = original(*args, **kwargs)
        if current() is not None:
            guarded("secrets", _remember, value)
        return value

    wrapper._kolo_django = True
    return wrapper


def install_secrets() -> None:
    """Masked CSRF tokens (a new one per ``get_token()``, rendered into forms and
    meta tags), session data as stored, and password reset tokens."""
    import importlib

    from django.contrib.auth.tokens import PasswordResetTokenGenerator
    from django.contrib.sessions.backends.base import SessionBase
    from django.middleware import csrf

    original = csrf.get_token
    if not getattr(original, "_kolo_django", False):
        get_token = _remembering(original)
        # Modules that imported the function by name keep their own reference.
        for name in (
            "django.middleware.csrf",
            "django.template.context_processors",
            "django.template.backends.utils",
        ):
            module = importlib.import_module(name)
            if getattr(module, "get_token", None) is original:
                module.get_token = get_token  # type: ignore[attr-defined]
    for cls, name in ((SessionBase, "encode"), (PasswordResetTokenGenerator, "make_token")):
        method = cls.__dict__[name]
        if not getattr(method, "_kolo_django", False):
            setattr(cls, name, _remembering(method))


def _note_template(name: str | None) -> None:
    recorder = current()
    if recorder is not None and name and recorder.mode is None:
        templates = recorder.templates
        if name not in templates:
            templates.append(name)
        recorder.add({"type": "template", "name": name})


def _on_template_rendered(
    sender: Any, template: Any = None, context: Any = None, **kwargs: Any
) -> None:
    recorder = current()
    if recorder is not None and template is not None:
        if getattr(template, "engine", None) is _debug_engine():
            # DEBUG's technical 404/500 pages: a test (DEBUG off) never renders them.
            return
        if not recorder.templates and recorder.mode is None:
            # Summarised when the request ends, once rendering has evaluated it.
            recorder.template_context_source = context
        origin = getattr(template, "origin", None)
        guarded("template", _note_template, origin.template_name if origin else template.name)


def _debug_engine() -> Any:
    from django.views.debug import DEBUG_ENGINE

    return DEBUG_ENGINE


def install_templates() -> None:
    from django.template.base import Template
    from django.test.signals import template_rendered
    from django.test.utils import instrumented_test_render

    # The same instrumented renderer the test runner installs (as
    # django-debug-toolbar does): a wrapper of our own around ``_render`` would
    # be replaced by setup_test_environment(), and recording in tests would
    # lose every template.
    template_rendered.connect(_on_template_rendered, dispatch_uid="kolo_django_templates")
    if Template._render is not instrumented_test_render:
        Template._render = instrumented_test_render  # type: ignore[method-assign]
    try:
        from django.template.backends.jinja2 import Template as JinjaTemplate
    except ImportError:  # jinja2 missing: nothing to hook
        return
    jinja_render = JinjaTemplate.render
    if getattr(jinja_render, "_kolo_django", False):
        return

    def render(self: Any, *args: Any, **kwargs: Any) -> Any:
        if current() is not None:
            guarded("template", _note_template, getattr(self.template, "name", None))
        return jinja_render(self, *args, **kwargs)

    render._kolo_django = True
    JinjaTemplate.render = render  # type: ignore[method-assign]


# --- Mail, logs, exceptions ---------------------------------------------------------------


def _note_mail(message: Any) -> None:
    recorder = current()
    if recorder is None or recorder.mode is not None:
        return
    # A weak set, not ids: a sent message may be freed and its id reused by the next.
    seen = recorder.mail_seen
    if message in seen:
        return
    seen.add(message)
    cap = int(recorder.config["MAX_BODY_BYTES"])
    body = str(message.body)
    recorder.add(
        {
            "type": "mail",
            "subject": str(message.subject),
            "from_email": str(message.from_email),
            "to": [str(a) for a in message.to],
            "cc": [str(a) for a in message.cc],
            "bcc": [str(a) for a in message.bcc],
            "reply_to": [str(a) for a in message.reply_to],
            "body": body[:cap],
            # (content, mimetype) pairs: the content, cut like the body.
            "alternatives": [str(alt[0])[:cap] for alt in getattr(message, "alternatives", [])],
            "attachments": [_attachment_name(a) for a in message.attachments],
        }
    )


def _attachment_name(attachment: Any) -> str | None:
    if isinstance(attachment, tuple):
        return attachment[0]
    return attachment.get_filename() if hasattr(attachment, "get_filename") else None


def install_mail() -> None:
    from django.core.mail.message import EmailMessage

    original = EmailMessage.message
    if getattr(original, "_kolo_django", False):
        return

    def message(self: Any, *args: Any, **kwargs: Any) -> Any:
        if current() is not None:
            guarded("mail", _note_mail, self)
        return original(self, *args, **kwargs)

    message._kolo_django = True
    EmailMessage.message = message  # type: ignore[method-assign]


class RecorderLogHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        recorder = current()
        if recorder is None or recorder.mode is not None or record.name.startswith("kolo_django"):
            return
        # Logging does not catch a handler's exception: it would reach the
        # user's logger call.
        guarded("log", self._record, recorder, record)

    def _record(self, recorder: Any, record: logging.LogRecord) -> None:
        if record.levelno < recorder.log_level:
            return
        try:
            message = record.getMessage()
        except Exception:
            message = str(record.msg)
        event = {
            "type": "log",
            "logger": record.name,
            "level": record.levelname,
            "message": message[: int(recorder.config["MAX_BODY_BYTES"])],
            "location": f"{record.pathname}:{record.lineno}",
        }
        if record.exc_info and record.exc_info[1] is not None:
            event["exception"] = f"{type(record.exc_info[1]).__name__}: {record.exc_info[1]}"
        recorder.add(event)


_log_handler = RecorderLogHandler(level=0)


def install_logging() -> None:
    root = logging.getLogger()
    if _log_handler not in root.handlers:
        root.addHandler(_log_handler)


def install_exceptions() -> None:
    from django.core.signals import got_request_exception

    got_request_exception.connect(_on_exception, dispatch_uid="kolo_django_exception")


def _on_exception(sender: Any, request: Any = None, **kwargs: Any) -> None:
    # A receiver's exception would escape Signal.send() into Django's handler.
    if current() is not None:
        guarded("exception", _note_exception)


def _note_exception() -> None:
    import sys
    import traceback

    recorder = current()
    if recorder is None:
        return
    exc = sys.exc_info()[1]
    if exc is None:
        return
    recorder.exception = {
        "type": f"{type(exc).__module__}.{type(exc).__qualname__}",
        "message": str(exc)[:2000],
        "traceback": "".join(traceback.format_exception(exc))[-20000:],
    }
    # The event's own "type" must stay "exception"; the class goes under its own key.
    recorder.add(
        {
            "type": "exception",
            "exception_type": recorder.exception["type"],
            "message": recorder.exception["message"],
            "traceback": recorder.exception["traceback"],
        }
    )
