"""Values the request, session or response refer to: the primary keys that
must keep their recorded value in the test."""

from __future__ import annotations

from typing import Any

from django.urls import Resolver404, resolve

from ..trace import decode_value


def referenced_values(documents: list[dict[str, Any]]) -> set[str]:
    found: set[str] = set()
    for document in documents:
        request = document.get("request") or {}
        response = document.get("response") or {}
        resolver = request.get("resolver") or {}
        _walk(resolver.get("args"), found)
        _walk(resolver.get("kwargs"), found)
        _walk(request.get("query"), found)
        body = request.get("body") or {}
        _walk(body.get("form"), found)
        _walk(body.get("json"), found)
        _walk(request.get("session"), found)
        _walk(response.get("json"), found)
        location = response.get("redirect")
        if location:
            found.update(path_kwargs(location))
    return found


def path_kwargs(url: str) -> set[str]:
    from urllib.parse import urlsplit

    try:
        match = resolve(urlsplit(url).path)
    except (Resolver404, Exception):
        return set()
    return {str(v) for v in list(match.kwargs.values()) + list(match.args)}


def _walk(value: Any, found: set[str]) -> None:
    value = decode_value(value) if isinstance(value, dict) and "$t" in value else value
    if isinstance(value, dict):
        for item in value.values():
            _walk(item, found)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _walk(item, found)
    elif isinstance(value, bool) or value is None:
        return
    else:
        found.add(str(value))
