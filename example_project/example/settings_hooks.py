"""The example project with every generation hook configured:
``DJANGO_SETTINGS_MODULE=example.settings_hooks``."""

from __future__ import annotations

from .settings import *  # noqa: F403
from .settings import BASE_DIR

KOLO_DJANGO = {
    "FACTORIES": [
        {"path": "todos.factories.UserFactory"},
        {"path": "todos.factories.TodoListFactory", "pk": True},
        {"path": "todos.factories.TodoFactory", "pk": True},
    ],
    "FIELD_PARSERS": {"todos.fields.ColorField": "todos.generation.parse_color"},
    "TRACE_PROCESSORS": ["todos.generation.recorded_prefix", "todos.generation.ticket_docstring"],
    "TEST_TEMPLATE": str(BASE_DIR / "kolo_templates" / "unittest_team.py.j2"),
}
