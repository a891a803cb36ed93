"""Bounded, side-effect-free reprs of locals and return values.

Never evaluates a QuerySet or a lazy object, and never lets a broken
``__repr__`` escape: what the user's code would not have done, we do not do.
"""

from __future__ import annotations

import datetime
import decimal
import re
import threading
import types
import uuid
from itertools import islice
from typing import Any

from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponseBase
from django.utils.functional import LazyObject, Promise, empty

from .recorder import current
from .redact import REDACTED, collect, is_secret_key

# Per thread: ``active`` while a guarded __repr__ runs; ``held``, the
# recorder, while a call's return event takes its reprs (set by
# CallTracker.on_return).
_state = threading.local()
_PLAIN = (int, float, bool, type(None))


def safe_repr(value: Any, limit: int = 200, depth: int = 0) -> str:
    try:
        text = _repr(value, limit, depth)
    except ValueError:
        # An int beyond sys.get_int_max_str_digits(), alone or in a container.
        return f"<{type(value).__qualname__} (repr failed: ValueError)>"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _kind(cls: type) -> str:
    """How values of a type are shown; the isinstance() checks run once per type."""
    kind = _KINDS.get(cls)
    if kind is None:
        for base, name in _KIND_ORDER:
            if issubclass(cls, base):
                kind = name
                break
        else:
            if cls.__repr__ is object.__repr__:
                kind = "default"
            elif any(
                issubclass(cls, base) and cls.__repr__ is base.__repr__ for base in _BUILTIN_REPR
            ):
                kind = "builtin"
            else:
                kind = "repr"
        if len(_KINDS) >= 4096:
            _KINDS.clear()  # classes made at run time: keep the cache bounded
        _KINDS[cls] = kind
    return kind


def _repr(value: Any, limit: int, depth: int) -> str:
    cls = type(value)
    # Most locals and their items: answered before the dispatch on kind.
    if cls in _PLAIN_TYPES:
        return repr(value)
    if cls is str:
        return repr(value[:limit])
    kind = _KINDS.get(cls) or _kind(cls)
    if kind == "plain":
        return repr(value)
    if kind == "str":
        return repr(value[:limit])
    if kind == "repr":
        return _guarded_repr(value)
    if kind == "builtin":
        # No user code runs, so no query to hide and no recursion: only an
        # error to catch (a tzinfo's repr inside a datetime's).
        try:
            return repr(value)
        except Exception as exc:
            return f"<{cls.__qualname__} (repr failed: {type(exc).__name__})>"
    if kind == "container":
        return _container(value, limit, depth)
    if kind == "model":
        return f"<{value._meta.label} pk={value.pk!r}>"
    if kind == "queryset":
        label = value.model._meta.label if value.model else "?"
        cache = value._result_cache
        return f"<QuerySet {label} ({'not evaluated' if cache is None else f'{len(cache)} rows'})>"
    if kind == "lazy":
        wrapped = value._wrapped
        return "<lazy object (not evaluated)>" if wrapped is empty else _repr(wrapped, limit, depth)
    if kind == "promise":
        return f"<lazy {type(value).__name__}>"
    if kind == "request":
        return f"<{type(value).__name__} {value.method} {value.path!r}>"
    if kind == "response":
        return f"<{type(value).__name__} status_code={value.status_code}>"
    return f"<{type(value).__module__}.{type(value).__qualname__}>"


# In the order they are checked: a lazy object may pose as any class.
_KIND_ORDER: tuple[tuple[type | tuple[type, ...], str], ...] = (
    (LazyObject, "lazy"),
    (_PLAIN, "plain"),
    (str, "str"),
    (QuerySet, "queryset"),
    (Model, "model"),
    (Promise, "promise"),
    (HttpRequest, "request"),
    (HttpResponseBase, "response"),
    ((list, tuple, set, frozenset, dict), "container"),
)
_KINDS: dict[type, str] = {}
# Types whose own repr runs no user code and queries nothing: shown without
# the guard of an arbitrary __repr__ (a class: its metaclass's own repr).
_BUILTIN_REPR: tuple[type, ...] = (
    type,
    types.FunctionType,
    types.BuiltinFunctionType,
    re.Match,
    re.Pattern,
    bytes,
    complex,
    range,
    datetime.date,
    datetime.datetime,
    datetime.time,
    datetime.timedelta,
    datetime.timezone,
    decimal.Decimal,
    uuid.UUID,
)
# Exact types whose builtin repr is the one shown.
_PLAIN_TYPES = frozenset(_PLAIN)
_FLAT_TYPES = _PLAIN_TYPES | {str}
_STR = frozenset((str,))


def _container(value: Any, limit: int, depth: int) -> str:
    if depth >= 2:
        return f"<{type(value).__name__} of {len(value)}>"
    if _flat(value, limit):
        # The text the loop below would make, up to the length limit.
        return repr(value)
    if len(value) > 20:
        head = _flat_head(value, limit)
        if head is not None:
            return head
    parts: list[str] = []
    used = 0
    is_dict = isinstance(value, dict)
    for item in islice(value.items() if is_dict else value, 20):
        if is_dict:
            key, val = item
            shown = (
                REDACTED
                if isinstance(key, str) and is_secret_key(key)
                else _repr(val, limit, depth + 1)
            )
            text = f"{_repr(key, limit, depth + 1)}: {shown}"
        else:
            text = _repr(item, limit, depth + 1)
        parts.append(text)
        used += len(text) + 2
        if used > limit:
            break
    more = ", …" if len(parts) < len(value) else ""
    body = ", ".join(parts) + more
    if isinstance(value, dict):
        return "{" + body + "}"
    if isinstance(value, list):
        return "[" + body + "]"
    if isinstance(value, tuple):
        return "(" + body + ("," if len(value) == 1 else "") + ")"
    return f"{type(value).__name__}({{{body}}})"


def _flat_head(value: Any, limit: int) -> str | None:
    """A longer list, tuple or dict of plain values shown by its first 20
    items, in one builtin repr. The loop in ``_container`` stops once the
    text passes the length limit; this text has the same start, and
    ``safe_repr`` cuts both at the limit."""
    cls = type(value)
    if cls is list or cls is tuple:
        head = value[:20]
        if _flat_items(head, limit):
            return repr(head)[:-1] + (", …]" if cls is list else ", …)")
    elif cls is dict:
        head = dict(islice(value.items(), 20))
        if _flat_dict(head, limit):
            return repr(head)[:-1] + ", …}"
    return None


def _flat(value: Any, limit: int) -> bool:
    """A list, tuple or dict of at most 20 plain values and strings within
    the limit, with no secret key: its builtin repr is safe, and shows it."""
    if len(value) > 20:
        return False
    cls = type(value)
    if cls is dict:
        return _flat_dict(value, limit)
    return (cls is list or cls is tuple) and _flat_items(value, limit)


def _flat_dict(value: dict[Any, Any], limit: int) -> bool:
    return (
        _flat_items(value.values(), limit)
        and _flat_items(value, limit)
        and not any(is_secret_key(key) for key in value if type(key) is str)
    )


def _flat_items(items: Any, limit: int) -> bool:
    """Plain values and strings within the limit only."""
    types = set(map(type, items))
    if types <= _PLAIN_TYPES:
        return True
    if types == _STR:
        # Strings only: one C-level pass finds the longest.
        return max(map(len, items)) <= limit
    return types <= _FLAT_TYPES and all(len(x) <= limit for x in items if type(x) is str)


def _guarded_repr(value: Any) -> str:
    held = getattr(_state, "held", None)
    if held is not None:
        # A return event's reprs (CallTracker.on_return, where the mode is
        # None): its recorder is known, and no other repr of ours runs.
        held.mode = "silent"
        try:
            return _user_repr(value)
        finally:
            held.mode = None
    if getattr(_state, "active", False):
        return f"<{type(value).__qualname__}>"
    _state.active = True
    recorder = current()
    # Set directly, not through in_mode(): this runs for most locals.
    previous = recorder.mode if recorder is not None else None
    if recorder is not None:
        recorder.mode = "silent"
    try:
        return _user_repr(value)
    finally:
        if recorder is not None:
            recorder.mode = previous
        _state.active = False


def _user_repr(value: Any) -> str:
    try:
        return repr(value)
    except RecursionError:
        return f"<{type(value).__qualname__} (repr recursed)>"
    except Exception as exc:
        return f"<{type(value).__qualname__} (repr failed: {type(exc).__name__})>"


def safe_locals(
    frame_locals: dict[str, Any],
    limit: int,
    max_locals: int,
    sensitive: Any = None,
    secrets: set[str] | None = None,
) -> dict[str, str]:
    """Bounded reprs of a frame's locals.

    ``sensitive``: what Django's ``@sensitive_variables`` marked for this frame,
    ``"__ALL__"`` or a tuple of names. Named values are hidden and go into
    ``secrets`` for the scrub pass; with ``"__ALL__"`` every value is hidden
    (and none scrubbed elsewhere, as with ``sensitive_post_parameters()``).
    """
    out: dict[str, str] = {}
    hide_all = sensitive == "__ALL__"
    names = () if hide_all or not sensitive else sensitive
    for name, value in frame_locals.items():
        if len(out) >= max_locals:
            out["…"] = f"{len(frame_locals) - max_locals} more"
            break
        if hide_all:
            out[name] = REDACTED
        elif name in names or is_secret_key(name):
            if secrets is not None and isinstance(value, (str, bytes)):
                collect(value, secrets)
            out[name] = REDACTED
        elif type(value) in _FLAT_TYPES and (type(value) is not str or len(value) <= limit):
            # Most locals: safe_repr's answer without its dispatch (a str
            # within the limit, a float, a bool, None; an int, whose repr
            # only fails beyond sys.get_int_max_str_digits()).
            try:
                text = repr(value)
            except ValueError:
                text = safe_repr(value, limit)
            out[name] = text if len(text) <= limit else text[: limit - 1] + "…"
        else:
            out[name] = safe_repr(value, limit)
    return out
