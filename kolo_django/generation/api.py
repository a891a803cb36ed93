"""Generation entry point: documents in, test source out."""

from __future__ import annotations

from typing import Any

from ..conf import get_config
from . import hooks
from .build import build_plan
from .context import build_context
from .render import TemplateProblem, render
from .values import field_parsers


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
    style: str | None = None,
    template: str | None = None,
    test_class: str | None = None,
    test_name: str | None = None,
    processors: list[Any] | None = None,
    factories: list[dict[str, Any]] | None = None,
    parsers: dict[str, str] | None = None,
    time_backend: str | None = None,
    http_backend: str | None = None,
    formatter: str | None = None,
) -> tuple[str, dict[str, Any]]:
    """The source of one test replaying ``documents`` in order, and its context.

    Every keyword left as None comes from the ``KOLO_DJANGO`` settings."""
    check_documents(documents)
    config = get_config()
    style = style or config["TEST_STYLE"]
    if style == "auto":
        from .style import detect_style
        from .verify import project_root

        style = detect_style(project_root())
    try:
        factory_hooks = hooks.load_factories(
            config["FACTORIES"] if factories is None else factories
        )
        parser_hooks = hooks.load_field_parsers(
            config["FIELD_PARSERS"] if parsers is None else parsers
        )
        processor_hooks = (
            hooks.load_processors(config["TRACE_PROCESSORS"])
            if processors is None
            else [
                hooks.load_callable(p, "processors") if isinstance(p, str) else p
                for p in processors
            ]
        )
    except hooks.HookError as exc:
        raise GenerationError(str(exc)) from None
    options = {
        "style": style,
        "test_class": test_class,
        "test_name": test_name,
        "time_backend": time_backend or config["TIME_BACKEND"],
        "http_backend": http_backend or config["HTTP_MOCK_BACKEND"],
        "factories": factory_hooks,
    }
    with field_parsers(parser_hooks):
        try:
            context = build_context(documents, options, processor_hooks)
            plan = build_plan(context)
        except hooks.HookError as exc:
            raise GenerationError(str(exc)) from None
    context["plan"] = plan
    try:
        source = render(
            plan,
            style=style,
            template=template or config["TEST_TEMPLATE"],
            formatter=formatter or config["FORMATTER"],
        )
    except TemplateProblem as exc:
        raise GenerationError(str(exc)) from None
    return source, context
