"""The configurations the benchmarks compare.

- ``absent``: kolo_django not installed at all (server benchmark only).
- ``off``: the app installed (its hooks idle), the middleware removed.
- ``gen``: generation-level capture, ``CAPTURE_CALLS: False``.
- ``full``: calls with their locals (the defaults).
- ``kolo``: Kolo 3.6.1's ``kolo.middleware.KoloMiddleware``, when installed.
"""

from __future__ import annotations

import importlib.util
from typing import Any

CONFIGS = {
    "absent": "kolo_django not installed",
    "off": "no middleware",
    "gen": "gen-level (CAPTURE_CALLS False)",
    "full": "full (calls + locals)",
    "kolo": "Kolo 3.6.1 middleware",
}

# The benchmark views live outside the example project's BASE_DIR: name them
# so their functions count as project code, as the todos app's do.
CALLS_INCLUDE = ["benchmarks.views"]


def kolo_available() -> bool:
    return importlib.util.find_spec("kolo") is not None


def kolo_version() -> str | None:
    if not kolo_available():
        return None
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("kolo")
    except PackageNotFoundError:
        return "?"


def kolo_settings(config: str, **extra: Any) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "ENABLED": config in ("gen", "full"),
        "RECORD_DURING_TESTS": True,
        "CAPTURE_CALLS": config == "full",
        "CAPTURE_LOCALS": True,
        "CALLS_INCLUDE": CALLS_INCLUDE,
    }
    settings.update(extra)
    return settings


def middleware_for(config: str, base: list[str]) -> list[str]:
    if config in ("gen", "full"):
        return ["kolo_django.middleware.KoloMiddleware", *base]
    if config == "kolo":
        return ["kolo.middleware.KoloMiddleware", *base]
    return list(base)
