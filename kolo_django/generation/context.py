"""The generation context: what processors see and enrich before the plan is built."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Any

from . import naming
from .hooks import HookError
from .rows import collect
from .seeds import build_seeds

Processor = Callable[[dict[str, Any]], dict[str, Any]]


def rows_processor(context: dict[str, Any]) -> dict[str, Any]:
    rowset = collect(context["traces"])
    skipped = [
        f"model {label} no longer exists: its rows were skipped"
        for label in sorted(rowset.missing_models)
    ]
    skipped += [
        f"field {name} no longer exists: its values were skipped"
        for name in sorted(rowset.missing_fields)
    ]
    return {"rowset": rowset, "skipped": skipped}


def seeds_processor(context: dict[str, Any]) -> dict[str, Any]:
    factories = context["options"].get("factories") or {}
    return {"seeds": build_seeds(context["traces"], context["rowset"], factories)}


def names_processor(context: dict[str, Any]) -> dict[str, Any]:
    traces = context["traces"]
    options = context["options"]
    lines = [
        f"{(t.get('request') or {}).get('method')} {(t.get('request') or {}).get('path')} "
        f"-> {(t.get('response') or {}).get('status_code')} ({t.get('id')})"
        for t in traces
    ]
    return {
        "class_name": options.get("test_class") or naming.class_name(traces),
        "test_name": options.get("test_name") or naming.test_name(traces),
        "docstring": "Replays " + "; then ".join(lines) + ".",
    }


def backends_processor(context: dict[str, Any]) -> dict[str, Any]:
    options = context["options"]
    http_backend = options.get("http_backend") or "httpretty"
    time_backend = options.get("time_backend")
    if time_backend is None:
        if importlib.util.find_spec("time_machine"):
            time_backend = "time-machine"
        elif importlib.util.find_spec("freezegun"):
            time_backend = "freezegun"
    if time_backend == "none":
        time_backend = None
    return {"time_backend": time_backend, "http_backend": http_backend}


BUILTIN_PROCESSORS: list[Processor] = [
    rows_processor,
    seeds_processor,
    names_processor,
    backends_processor,
]


def build_context(
    documents: list[dict[str, Any]], options: dict[str, Any], extra: list[Processor] | None = None
) -> dict[str, Any]:
    """Run the built-in processors, then the project's, each seeing what the
    earlier ones produced."""
    context: dict[str, Any] = {"traces": documents, "options": options}
    for processor in BUILTIN_PROCESSORS:
        context.update(processor(context))
    for processor in extra or ():
        name = getattr(processor, "__qualname__", repr(processor))
        try:
            result = processor(context)
        except Exception as exc:
            raise HookError(f"trace processor {name} raised {type(exc).__name__}: {exc}") from None
        if not isinstance(result, dict):
            raise HookError(f"trace processor {name} returned {type(result).__name__}, not a dict")
        context.update(result)
    return context
