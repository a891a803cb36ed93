"""Generation entry point: documents in, test source out."""

from __future__ import annotations

from typing import Any

from .build import build_plan
from .context import Processor, build_context
from .render import render


class GenerationError(Exception):
    """A trace that cannot become a test; the message is one line."""


def check_documents(documents: list[dict[str, Any]]) -> None:
    for document in documents:
        request = document.get("request")
        if not isinstance(request, dict) or not request.get("method") or not request.get("path"):
            raise GenerationError(f"trace {document.get('id', '?')} has no request to replay")
        if not isinstance(document.get("response"), dict):
            raise GenerationError(f"trace {document.get('id', '?')} has no response to assert on")


def generate(
    documents: list[dict[str, Any]],
    *,
    style: str = "unittest",
    template: str | None = None,
    test_class: str | None = None,
    test_name: str | None = None,
    processors: list[Processor] = (),  # type: ignore[assignment]
    time_backend: str | None = None,
) -> tuple[str, dict[str, Any]]:
    """The source of one test replaying ``documents`` in order, and its context."""
    check_documents(documents)
    options = {
        "style": style,
        "test_class": test_class,
        "test_name": test_name,
        "time_backend": time_backend,
    }
    context = build_context(documents, options, list(processors))
    plan = build_plan(context)
    context["plan"] = plan
    return render(plan, style=style, template=template), context
