"""A custom model field whose Python value is not a builtin type."""

from __future__ import annotations

import re
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.query_utils import DeferredAttribute

_HEX_RE = re.compile(r"^#([0-9a-fA-F]{2})([0-9a-fA-F]{2})([0-9a-fA-F]{2})$")


class Color:
    """An RGB colour; ``str()`` gives the "#rrggbb" form stored in the database."""

    __slots__ = ("r", "g", "b")

    def __init__(self, r: int, g: int, b: int) -> None:
        for channel in (r, g, b):
            if not 0 <= channel <= 255:
                raise ValueError(f"colour channel out of range: {channel}")
        self.r = r
        self.g = g
        self.b = b

    @classmethod
    def from_hex(cls, value: str) -> Color:
        match = _HEX_RE.match(value.strip())
        if match is None:
            raise ValueError(f"not a #rrggbb colour: {value!r}")
        r, g, b = (int(part, 16) for part in match.groups())
        return cls(r, g, b)

    @property
    def hex(self) -> str:
        return f"#{self.r:02x}{self.g:02x}{self.b:02x}"

    def __str__(self) -> str:
        return self.hex

    def __repr__(self) -> str:
        return f"Color({self.r}, {self.g}, {self.b})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Color):
            return (self.r, self.g, self.b) == (other.r, other.g, other.b)
        # Lets the field's string default and form data compare naturally.
        if isinstance(other, str):
            return self.hex == other.strip().lower()
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self.r, self.g, self.b))


class ColorDescriptor(DeferredAttribute):
    """Coerce assigned strings (e.g. the field default) to ``Color``.

    Without this, a fresh instance would hold the raw default string while a
    row loaded from the database holds a ``Color``.
    """

    def __set__(self, instance: models.Model, value: Any) -> None:
        try:
            value = self.field.to_python(value)
        except ValidationError:
            pass  # Leave it as given; full_clean() reports the error.
        instance.__dict__[self.field.attname] = value


class ColorField(models.CharField):
    description = "An RGB colour stored as #rrggbb"
    descriptor_class = ColorDescriptor

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 7)
        super().__init__(*args, **kwargs)

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> Color | None:
        if value is None:
            return None
        return Color.from_hex(value)

    def to_python(self, value: Any) -> Color | None:
        if value is None or isinstance(value, Color):
            return value
        if value == "" and self.blank:
            return None
        try:
            return Color.from_hex(str(value))
        except ValueError:
            raise ValidationError(
                "Enter a colour as #rrggbb.", code="invalid", params={"value": value}
            ) from None

    def get_prep_value(self, value: Any) -> str | None:
        value = self.to_python(value)
        return None if value is None else value.hex

    def run_validators(self, value: Any) -> None:
        # CharField's MaxLengthValidator needs the stored string, not a Color.
        super().run_validators(self.get_prep_value(value))
