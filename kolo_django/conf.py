"""The ``KOLO_DJANGO`` settings dict, merged over documented defaults.

Read it through :func:`get_config`; the cache is reset on ``setting_changed`` so
``override_settings(KOLO_DJANGO=...)`` works in tests.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

SETTING_NAME = "KOLO_DJANGO"

# key -> (default, accepted types). ``None`` in the types tuple allows None.
CONFIG_DEFAULTS: dict[str, tuple[Any, tuple[type | None, ...]]] = {
    # None: record when DEBUG is on. True forces recording on (check W001 warns
    # when DEBUG is off); False switches it off.
    "ENABLED": (None, (bool, None)),
    "RECORD_DURING_TESTS": (False, (bool,)),
    # Regexes matched against request.path; STATIC_URL and MEDIA_URL are added.
    "IGNORE_PATHS": ([r"^/favicon\.ico$", r"^/admin/kolo_django/"], (list, tuple)),
    "DATABASE_ALIAS": ("default", (str,)),
    # Store traces from a writer thread, off the request path (never under tests).
    "STORE_IN_BACKGROUND": (True, (bool,)),
    "CAPTURE_CALLS": (True, (bool,)),
    "CAPTURE_LOCALS": (True, (bool,)),
    # Module-name prefixes. Empty include: every module whose file lives under
    # the project (BASE_DIR or the working directory) outside site-packages.
    "CALLS_INCLUDE": ([], (list, tuple)),
    "CALLS_EXCLUDE": ([], (list, tuple)),
    "LOG_LEVEL": ("WARNING", (str, int)),
    "MAX_BODY_BYTES": (64 * 1024, (int,)),
    "MAX_FILE_BYTES": (16 * 1024, (int,)),
    "MAX_RESPONSE_BYTES": (128 * 1024, (int,)),
    "MAX_ROWS_PER_QUERY": (100, (int,)),
    "MAX_BACKING_ROWS": (500, (int,)),
    "MAX_EVENTS": (10_000, (int,)),
    "MAX_REPR_LENGTH": (200, (int,)),
    "MAX_LOCALS": (25, (int,)),
    "RETENTION_MAX_TRACES": (1000, (int, None)),
    "RETENTION_MAX_AGE_DAYS": (14, (int, float, None)),
    "PRUNE_BATCH_SIZE": (500, (int,)),
    # Extra regexes for keys (form fields, JSON keys, headers, columns) whose
    # values are redacted, on top of the built-in ones.
    "REDACT_KEYS": ([], (list, tuple)),
    # --- generation (kolo_generate) ---
    # "unittest", "pytest" or "auto" (the project's runner decides).
    "TEST_STYLE": ("auto", (str,)),
    # A Jinja2 template used instead of the built-in one of the style.
    "TEST_TEMPLATE": (None, (str, None)),
    # factory_boy factories: [{"path": "tests.factories.TodoFactory", "pk": False}].
    "FACTORIES": ([], (list, tuple)),
    # {"app.fields.SomeField": "app.testing.parse_some_field"}: callables
    # (value, field) -> value for fields the built-ins cannot render.
    "FIELD_PARSERS": ({}, (dict,)),
    # Dotted paths to callables (context) -> dict, run after the built-ins.
    "TRACE_PROCESSORS": ([], (list, tuple)),
    # None: detected (time-machine, else freezegun); or "time-machine", "freezegun", "none".
    "TIME_BACKEND": (None, (str, None)),
    # "httpretty" or "responses" (requests only).
    "HTTP_MOCK_BACKEND": ("httpretty", (str,)),
    # None: detected (ruff, else black); or "ruff", "black", "none".
    "FORMATTER": (None, (str, None)),
}

CHOICES = {
    "TEST_STYLE": ("unittest", "pytest", "auto"),
    "TIME_BACKEND": ("time-machine", "freezegun", "none"),
    "HTTP_MOCK_BACKEND": ("httpretty", "responses"),
    "FORMATTER": ("ruff", "black", "none"),
}

INT_MINIMUMS = {
    "MAX_BODY_BYTES": 0,
    "MAX_FILE_BYTES": 0,
    "MAX_RESPONSE_BYTES": 0,
    "MAX_ROWS_PER_QUERY": 0,
    "MAX_BACKING_ROWS": 0,
    "MAX_EVENTS": 10,
    "MAX_REPR_LENGTH": 20,
    "MAX_LOCALS": 0,
    "RETENTION_MAX_TRACES": 1,
    "PRUNE_BATCH_SIZE": 1,
}

REGEX_LIST_KEYS = ("IGNORE_PATHS", "REDACT_KEYS")


def user_config() -> Any:
    return getattr(settings, SETTING_NAME, {})


@lru_cache(maxsize=1)
def get_config() -> dict[str, Any]:
    """The merged configuration. Invalid user values fall back to defaults;
    the system checks report them."""
    config = {key: default for key, (default, _types) in CONFIG_DEFAULTS.items()}
    user = user_config()
    if isinstance(user, dict):
        for key, value in user.items():
            if key in CONFIG_DEFAULTS and not config_errors(key, value):
                config[key] = value
    return config


def config_errors(key: str, value: Any) -> list[str]:
    """Problems with one user value, as short sentences (empty when valid)."""
    _default, types = CONFIG_DEFAULTS[key]
    allowed = tuple(t for t in types if t is not None)
    if value is None:
        return [] if None in types else [f"{key} must not be None."]
    if isinstance(value, bool) and bool not in allowed:
        return [f"{key} must be {_type_names(types)}, not bool."]
    if not isinstance(value, allowed):
        return [f"{key} must be {_type_names(types)}, not {type(value).__name__}."]
    errors = []
    if key in INT_MINIMUMS and isinstance(value, int) and value < INT_MINIMUMS[key]:
        errors.append(f"{key} must be at least {INT_MINIMUMS[key]}.")
    if key in REGEX_LIST_KEYS or key in ("CALLS_INCLUDE", "CALLS_EXCLUDE"):
        for item in value:
            if not isinstance(item, str):
                errors.append(f"{key} must contain only strings, found {item!r}.")
            elif key in REGEX_LIST_KEYS:
                try:
                    re.compile(item)
                except re.error as exc:
                    errors.append(f"{key} has an invalid regular expression {item!r}: {exc}.")
    if key in CHOICES and isinstance(value, str) and value not in CHOICES[key]:
        errors.append(f"{key} must be one of {', '.join(CHOICES[key])}, not {value!r}.")
    if key == "FACTORIES":
        for item in value:
            if not isinstance(item, dict) or not isinstance(item.get("path"), str):
                errors.append(
                    f'FACTORIES entries must be dicts like {{"path": "app.factories.F"}}, found {item!r}.'
                )
            elif set(item) - {"path", "pk"} or not isinstance(item.get("pk", False), bool):
                errors.append(
                    f"FACTORIES entry {item!r} may only have 'path' (str) and 'pk' (bool)."
                )
    if key == "FIELD_PARSERS":
        for field_path, parser in value.items():
            if not isinstance(field_path, str) or not isinstance(parser, str):
                errors.append(
                    f"FIELD_PARSERS maps dotted field paths to dotted callable paths, found {field_path!r}: {parser!r}."
                )
    if key == "TRACE_PROCESSORS":
        for item in value:
            if not isinstance(item, str):
                errors.append(f"TRACE_PROCESSORS must contain dotted paths, found {item!r}.")
    if key == "RETENTION_MAX_AGE_DAYS" and isinstance(value, (int, float)):
        if not math.isfinite(value) or value <= 0:
            errors.append(f"{key} must be a positive number of days (or None), not {value!r}.")
    if key == "LOG_LEVEL" and isinstance(value, str):
        import logging

        if not isinstance(logging.getLevelName(value.upper()), int):
            errors.append(f"LOG_LEVEL {value!r} is not a logging level name.")
    return errors


def _type_names(types: tuple[type | None, ...]) -> str:
    names = ["None" if t is None else t.__name__ for t in types]
    return " or ".join(names)


def recording_enabled() -> bool:
    """Whether the middleware records at all (before per-request filters)."""
    enabled = get_config()["ENABLED"]
    if enabled is None:
        enabled = bool(settings.DEBUG)
    if not enabled:
        return False
    if is_test_run() and not get_config()["RECORD_DURING_TESTS"]:
        return False
    return True


def is_test_run() -> bool:
    # setup_test_environment(), called by Django's runner and by pytest-django,
    # installs ``mail.outbox`` and saves the settings it changes on _TestState.
    # Both are required: the locmem email backend creates mail.outbox by itself,
    # so a development server using it would stop recording after one mail.
    from django.core import mail

    if not hasattr(mail, "outbox"):
        return False
    try:
        from django.test.utils import _TestState
    except ImportError:  # pragma: no cover - a Django without it
        return True
    return hasattr(_TestState, "saved_data")


@lru_cache(maxsize=1)
def ignore_patterns() -> tuple[re.Pattern[str], ...]:
    patterns = list(get_config()["IGNORE_PATHS"])
    for url in (getattr(settings, "STATIC_URL", None), getattr(settings, "MEDIA_URL", None)):
        if url and str(url).startswith("/") and str(url) != "/":
            patterns.append("^" + re.escape(str(url)))
    return tuple(re.compile(p) for p in patterns)


@receiver(setting_changed)
def _reset_config(*, setting: str, **kwargs: Any) -> None:
    if setting in (SETTING_NAME, "STATIC_URL", "MEDIA_URL", "DEBUG", "BASE_DIR"):
        get_config.cache_clear()
        ignore_patterns.cache_clear()
        # Caches built from the config: REDACT_KEYS, CALLS_INCLUDE/EXCLUDE, BASE_DIR.
        from .recording import frames, orm, redact

        redact.reset_cache()
        frames.reset_caches()
        orm.reset_caches()
