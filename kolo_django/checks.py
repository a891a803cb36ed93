"""System checks for the ``KOLO_DJANGO`` settings; ids are documented in docs/checks.md."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register

from .conf import CONFIG_DEFAULTS, SETTING_NAME, config_errors, user_config

MIDDLEWARE_PATH = "kolo_django.middleware.KoloMiddleware"


@register(Tags.compatibility)
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    user = user_config()
    if not isinstance(user, dict):
        return [
            Error(
                f"{SETTING_NAME} must be a dict, not {type(user).__name__}.",
                hint="Set KOLO_DJANGO = {} and add only the keys you change.",
                id="kolo_django.E001",
            )
        ]
    messages: list[Any] = []
    for key, value in user.items():
        if key not in CONFIG_DEFAULTS:
            messages.append(
                Warning(
                    f"{SETTING_NAME} has an unknown key {key!r}; it is ignored.",
                    hint="Known keys: " + ", ".join(sorted(CONFIG_DEFAULTS)),
                    id="kolo_django.W002",
                )
            )
            continue
        for problem in config_errors(key, value):
            messages.append(
                Error(
                    f"{SETTING_NAME}[{key!r}] is invalid: {problem}",
                    hint="The default is used until this is fixed.",
                    id="kolo_django.E002",
                )
            )
    alias = user.get("DATABASE_ALIAS", "default")
    if isinstance(alias, str) and alias not in settings.DATABASES:
        messages.append(
            Error(
                f"{SETTING_NAME}['DATABASE_ALIAS'] names {alias!r}, which is not in DATABASES.",
                id="kolo_django.E003",
            )
        )
    if user.get("ENABLED") is True and not settings.DEBUG:
        messages.append(
            Warning(
                "Recording is forced on while DEBUG is False.",
                hint="Traces hold request data; never record in production.",
                id="kolo_django.W001",
            )
        )
    return messages


@register(Tags.compatibility)
def check_middleware(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    middleware = list(getattr(settings, "MIDDLEWARE", None) or [])
    if MIDDLEWARE_PATH not in middleware:
        return [
            Warning(
                f"{MIDDLEWARE_PATH} is not in MIDDLEWARE, so nothing is recorded.",
                hint=f'Add MIDDLEWARE.insert(0, "{MIDDLEWARE_PATH}").',
                id="kolo_django.W003",
            )
        ]
    if middleware[0] != MIDDLEWARE_PATH:
        return [
            Warning(
                f"{MIDDLEWARE_PATH} is not the first middleware; what runs before it "
                "(sessions, authentication, CSRF) is not recorded.",
                hint="Move it to the top of MIDDLEWARE.",
                id="kolo_django.W004",
            )
        ]
    return []


@register(Tags.compatibility)
def check_generation_hooks(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    """Factories, field parsers, processors and the template must load."""
    from .conf import get_config
    from .generation import hooks

    user = user_config()
    if not isinstance(user, dict):
        return []
    config = get_config()
    messages: list[Any] = []
    loaders = (
        ("FACTORIES", hooks.load_factories),
        ("FIELD_PARSERS", hooks.load_field_parsers),
        ("TRACE_PROCESSORS", hooks.load_processors),
    )
    for key, loader in loaders:
        if key in user:
            try:
                loader(config[key])
            except hooks.HookError as exc:
                messages.append(Error(str(exc), id="kolo_django.E004"))
    if config["TEST_TEMPLATE"]:
        try:
            hooks.check_template(config["TEST_TEMPLATE"])
        except hooks.HookError as exc:
            messages.append(Error(str(exc), id="kolo_django.E005"))
    return messages
