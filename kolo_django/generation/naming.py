"""Readable default names for generated test classes and methods."""

from __future__ import annotations

import re
from typing import Any

OUTCOMES = {
    200: "ok",
    201: "creates",
    202: "accepted",
    204: "no_content",
    301: "redirects",
    302: "redirects",
    303: "redirects",
    304: "not_modified",
    307: "redirects",
    308: "redirects",
    400: "rejects_bad_request",
    401: "requires_auth",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    422: "rejects_invalid",
    500: "server_error",
    502: "bad_gateway",
}


def _words(text: str) -> list[str]:
    return [w for w in re.split(r"[^0-9a-zA-Z]+", text) if w]


def view_words(document: dict[str, Any]) -> list[str]:
    request = document.get("request") or {}
    resolver = request.get("resolver") or {}
    name = resolver.get("url_name") or ""
    if not name:
        view = resolver.get("view") or ""
        name = view.rsplit(".", 1)[-1] if view else ""
    if not name:
        name = (request.get("path") or "root").strip("/") or "root"
    return _words(name) or ["view"]


def class_name(documents: list[dict[str, Any]]) -> str:
    words = view_words(documents[0])
    name = "".join(w[:1].upper() + w[1:] for w in words)
    if len(documents) > 1:
        name += "Flow"
    return name + "Tests"


def test_name(documents: list[dict[str, Any]]) -> str:
    parts: list[str] = []
    for document in documents[:3]:
        method = str((document.get("request") or {}).get("method") or "get").lower()
        status = (document.get("response") or {}).get("status_code")
        outcome = OUTCOMES.get(status, f"status_{status}")
        parts.append("_".join([method, *[w.lower() for w in view_words(document)], outcome]))
    name = "test_" + "_then_".join(parts)
    return re.sub(r"_+", "_", name)[:120]


def python_identifier(name: str) -> bool:
    return bool(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name))
