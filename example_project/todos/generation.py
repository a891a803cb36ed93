"""Hooks that shape the tests kolo_django generates for this project
(see ``KOLO_DJANGO`` in example/settings_hooks.py and docs/hooks/)."""

from __future__ import annotations

from typing import Any

from .fields import Color


def parse_color(value: Any, field: Any) -> Color:
    """FIELD_PARSERS: a ColorField value becomes ``Color(r, g, b)`` in tests,
    not the "#rrggbb" text the database holds."""
    return value if isinstance(value, Color) else Color.from_hex(str(value))


def recorded_prefix(context: dict[str, Any]) -> dict[str, Any]:
    """TRACE_PROCESSORS: mark generated classes, so they are told apart from
    hand-written ones."""
    return {"class_name": "Recorded" + context["class_name"]}


def ticket_docstring(context: dict[str, Any]) -> dict[str, Any]:
    """TRACE_PROCESSORS: runs after ``recorded_prefix`` and sees its result."""
    return {"docstring": f"{context['class_name']}: {context['docstring']}"}
