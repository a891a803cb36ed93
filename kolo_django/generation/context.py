"""The generation context: what processors see and enrich before the plan is built."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Any

from . import naming
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
    return {"seeds": build_seeds(context["traces"], context["rowset"])}


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
    time_backend = options.get("time_backend")
    if time_backend is None:
        if importlib.util.find_spec("time_machine"):
            time_backend = "time-machine"
        elif importlib.util.find_spec("freezegun"):
            time_backend = "freezegun"
    return {
        "time_backend": time_backend or None,
        "http_backend": options.get("http_backend") or "httpretty",
    }


BUILTIN_PROCESSORS: list[Processor] = [
    rows_processor,
    seeds_processor,
    names_processor,
    backends_processor,
]


def build_context(
    documents: list[dict[str, Any]], options: dict[str, Any], extra: list[Processor] = ()
) -> dict[str, Any]:  # type: ignore[assignment]
    context: dict[str, Any] = {"traces": documents, "options": options}
    for processor in [*BUILTIN_PROCESSORS, *extra]:
        result = processor(context)
        if not isinstance(result, dict):
            raise TypeError(
                f"trace processor {processor!r} returned {type(result).__name__}, not a dict"
            )
        context.update(result)
    return context
