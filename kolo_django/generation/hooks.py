"""User hooks from settings: factories, field parsers, trace processors, templates.

Each loader raises ``HookError`` with a one-line message; the system checks
and ``kolo_generate`` report it as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.utils.module_loading import import_string


class HookError(Exception):
    """A hook in KOLO_DJANGO that cannot be used."""


def load_callable(path: str, setting: str) -> Any:
    try:
        obj = import_string(path)
    except ImportError as exc:
        raise HookError(f"{setting}: {path!r} does not import ({exc})") from None
    except Exception as exc:  # a module that raises while importing
        raise HookError(
            f"{setting}: importing {path!r} raised {type(exc).__name__}: {exc}"
        ) from None
    if not callable(obj):
        raise HookError(f"{setting}: {path!r} is not callable (it is {type(obj).__name__})")
    return obj


@dataclass
class FactoryHook:
    factory: Any
    path: str
    model: Any
    with_pk: bool

    @property
    def name(self) -> str:
        return self.factory.__name__

    @property
    def import_line(self) -> str:
        module, _, name = self.path.rpartition(".")
        return f"from {module} import {name}"


def load_factories(entries: list[dict[str, Any]]) -> dict[Any, FactoryHook]:
    factories: dict[Any, FactoryHook] = {}
    for entry in entries:
        path = entry["path"]
        factory = load_callable(path, "FACTORIES")
        meta = getattr(factory, "_meta", None)
        model = getattr(meta, "model", None)
        if model is None or not hasattr(factory, "create"):
            raise HookError(f"FACTORIES: {path!r} is not a factory_boy model factory")
        if isinstance(model, str):
            from django.apps import apps

            model = apps.get_model(model)
        factories[model] = FactoryHook(factory, path, model, bool(entry.get("pk", False)))
    return factories


def load_field_parsers(mapping: dict[str, str]) -> dict[Any, Any]:
    parsers: dict[Any, Any] = {}
    for field_path, parser_path in mapping.items():
        try:
            field_class = import_string(field_path)
        except ImportError as exc:
            raise HookError(
                f"FIELD_PARSERS: field {field_path!r} does not import ({exc})"
            ) from None
        parsers[field_class] = load_callable(parser_path, "FIELD_PARSERS")
    return parsers


def load_processors(paths: list[str]) -> list[Any]:
    return [load_callable(path, "TRACE_PROCESSORS") for path in paths]


def check_template(path: str) -> None:
    """A template that is missing or does not compile (with file and line)."""
    import jinja2

    from .render import BUILTIN_TEMPLATES, environment

    if path in BUILTIN_TEMPLATES:
        return
    file = Path(path)
    if not file.is_file():
        raise HookError(f"template {path} does not exist")
    env = environment([str(file.parent.resolve())])
    try:
        env.parse(file.read_text(), name=file.name, filename=str(file))
    except jinja2.TemplateSyntaxError as exc:
        raise HookError(
            f"template {exc.filename or path}, line {exc.lineno}: {exc.message}"
        ) from None


def parser_for(field: Any, parsers: dict[Any, Any]) -> Any:
    for cls in type(field).__mro__:
        if cls in parsers:
            return parsers[cls]
    return None
