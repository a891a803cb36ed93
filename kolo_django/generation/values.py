"""Python source for recorded values: readable literals plus the imports they need."""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import uuid
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from ..trace import decode_value


@dataclass(frozen=True)
class Code:
    """A Python expression, with the imports it needs (``"import x"`` lines)."""

    text: str
    imports: frozenset[str] = field(default_factory=frozenset)

    def __str__(self) -> str:
        return self.text


def literal(value: Any) -> Code:
    """Source for a decoded Python value."""
    imports: set[str] = set()
    return Code(_literal(value, imports), frozenset(imports))


_parsers: ContextVar[dict[Any, Any] | None] = ContextVar("kolo_django_field_parsers", default=None)


@contextlib.contextmanager
def field_parsers(parsers: dict[Any, Any]) -> Iterator[None]:
    """FIELD_PARSERS in force while one test is generated."""
    token = _parsers.set(parsers)
    try:
        yield
    finally:
        _parsers.reset(token)


def from_trace(value: Any, model_field: Any = None) -> Code:
    """Source for a value as stored in a document, typed by the model field."""
    parsers = _parsers.get()
    if model_field is not None and parsers:
        from .hooks import parser_for

        parser = parser_for(model_field, parsers)
        if parser is not None:
            raw = (
                value.get("v")
                if isinstance(value, dict) and value.get("$t") == "field"
                else decode_value(value)
            )
            try:
                return literal(parser(raw, model_field))
            except Exception as exc:
                from .hooks import HookError

                name = getattr(parser, "__qualname__", repr(parser))
                where = f"{model_field.model.__name__}.{model_field.name}"
                raise HookError(
                    f"field parser {name} raised {type(exc).__name__} on {where}: {exc}"
                ) from None
    if isinstance(value, dict) and value.get("$t") == "field":
        text = value.get("v")
        if model_field is not None:
            try:
                return (
                    literal(model_field.to_python(text))
                    if _plain(model_field.to_python(text))
                    else literal(text)
                )
            except Exception:
                return literal(text)
        return literal(text)
    decoded = decode_value(value)
    if model_field is not None:
        decoded = _typed(decoded, model_field)
    return literal(decoded)


def _plain(value: Any) -> bool:
    return value is None or isinstance(
        value,
        (
            str,
            int,
            float,
            bool,
            decimal.Decimal,
            dt.date,
            dt.time,
            dt.timedelta,
            uuid.UUID,
            bytes,
            list,
            dict,
        ),
    )


def _typed(value: Any, model_field: Any) -> Any:
    """Values read back by a raw cursor can be of a looser type (a SQLite
    date as text, a decimal as float); the field turns them into its own."""
    if value is None:
        return None
    internal = model_field.get_internal_type()
    try:
        if internal in ("DecimalField",) and not isinstance(value, decimal.Decimal):
            return model_field.to_python(str(value))
        if internal in ("DateField",) and isinstance(value, str):
            return model_field.to_python(value)
        if internal in ("DateTimeField",) and isinstance(value, str):
            return model_field.to_python(value)
        if internal in ("TimeField",) and isinstance(value, str):
            return model_field.to_python(value)
        if internal in ("UUIDField",) and isinstance(value, str):
            return uuid.UUID(value)
        if internal == "BooleanField" and isinstance(value, int):
            return bool(value)
        if internal == "DurationField" and isinstance(value, int):
            return dt.timedelta(microseconds=value)
    except Exception:
        return value
    return value


def _literal(value: Any, imports: set[str]) -> str:
    if isinstance(value, (bool, type(None), int, str)):
        return repr(value)
    if isinstance(value, float):
        return (
            repr(value)
            if value == value and value not in (float("inf"), float("-inf"))
            else f'float("{value}")'
        )
    if isinstance(value, decimal.Decimal):
        imports.add("from decimal import Decimal")
        return f'Decimal("{value}")'
    if isinstance(value, dt.datetime):
        imports.add("import datetime")
        parts = [value.year, value.month, value.day, value.hour, value.minute, value.second]
        if value.microsecond:
            parts.append(value.microsecond)
        args = ", ".join(str(p) for p in parts)
        if value.tzinfo is not None:
            offset = value.utcoffset()
            if offset == dt.timedelta(0):
                return f"datetime.datetime({args}, tzinfo=datetime.timezone.utc)"
            return f"datetime.datetime({args}, tzinfo=datetime.timezone(datetime.timedelta(seconds={int(offset.total_seconds())})))"
        return f"datetime.datetime({args})"
    if isinstance(value, dt.date):
        imports.add("import datetime")
        return f"datetime.date({value.year}, {value.month}, {value.day})"
    if isinstance(value, dt.time):
        imports.add("import datetime")
        parts = [value.hour, value.minute, value.second] + (
            [value.microsecond] if value.microsecond else []
        )
        return f"datetime.time({', '.join(str(p) for p in parts)})"
    if isinstance(value, dt.timedelta):
        imports.add("import datetime")
        if value.microseconds:
            return f"datetime.timedelta(days={value.days}, seconds={value.seconds}, microseconds={value.microseconds})"
        if value.days:
            return f"datetime.timedelta(days={value.days}, seconds={value.seconds})"
        return f"datetime.timedelta(seconds={value.seconds})"
    if isinstance(value, uuid.UUID):
        imports.add("import uuid")
        return f'uuid.UUID("{value}")'
    if isinstance(value, (bytes, bytearray, memoryview)):
        return repr(bytes(value))
    if isinstance(value, list):
        return "[" + ", ".join(_literal(v, imports) for v in value) + "]"
    if isinstance(value, tuple):
        return (
            "("
            + ", ".join(_literal(v, imports) for v in value)
            + ("," if len(value) == 1 else "")
            + ")"
        )
    if isinstance(value, dict):
        return (
            "{"
            + ", ".join(f"{_literal(k, imports)}: {_literal(v, imports)}" for k, v in value.items())
            + "}"
        )
    # Another object: its repr, when it reads as a call of its own class.
    cls = type(value)
    text = repr(value)
    if text.startswith(cls.__name__ + "(") and cls.__module__ not in ("builtins", "__main__"):
        imports.add(f"from {cls.__module__} import {cls.__name__}")
        return text
    return repr(str(value))
