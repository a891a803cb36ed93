"""A summary of the context the first (top-level) template was rendered with:
simple values and the lengths of lists, which generated tests assert on."""

from __future__ import annotations

import datetime as dt
import decimal
from typing import Any

from django.core.paginator import Page
from django.db.models import Model, QuerySet
from django.forms import BaseForm

from ..trace import encode_value
from .redact import is_secret_key

SKIP_KEYS = {
    "True",
    "False",
    "None",
    "csrf_token",
    "request",
    "user",
    "perms",
    "messages",
    "DEFAULT_MESSAGE_LEVELS",
    "view",
    "block",
    "forloop",
}
MAX_KEYS = 40


def summarise(context: Any) -> dict[str, Any]:
    try:
        flat = context.flatten()
    except Exception:
        return {}
    summary: dict[str, Any] = {}
    for key, value in flat.items():
        if len(summary) >= MAX_KEYS:
            break
        if (
            not isinstance(key, str)
            or key in SKIP_KEYS
            or key.startswith("_")
            or is_secret_key(key)
        ):
            continue
        entry = _entry(value)
        if entry is not None:
            summary[key] = entry
    return summary


def _entry(value: Any) -> dict[str, Any] | None:
    if isinstance(value, bool) or value is None:
        return {"value": value}
    if isinstance(value, (int, float, decimal.Decimal, dt.date, dt.time)):
        return {"value": encode_value(value)}
    if isinstance(value, str):
        return {"value": value} if len(value) <= 200 else None
    if isinstance(value, Model):
        return {"model": value._meta.label_lower, "pk": encode_value(value.pk)}
    if isinstance(value, QuerySet):
        # Only an evaluated queryset has a length we may read without a query.
        cache = value._result_cache
        return {"length": len(cache)} if cache is not None else None
    if isinstance(value, Page):
        return {
            "length": len(value.object_list) if isinstance(value.object_list, list) else None,
            "page": value.number,
        }
    if isinstance(value, (list, tuple)):
        return {"length": len(value)}
    if isinstance(value, BaseForm) and value.is_bound and value._errors is not None:
        return {
            "form_errors": {
                field: [str(e) for e in errors] for field, errors in value._errors.items()
            }
        }
    return None
