"""Each kolo_django system check fires on its bad setting, and only then."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from django.core.checks import Error, Tags, Warning, run_checks
from django.test import override_settings

from kolo_django.checks import MIDDLEWARE_PATH, check_middleware, check_settings


def kolo_ids() -> list[str]:
    """What ``manage.py check`` would report (the suite's settings silence W001)."""
    return sorted(
        m.id
        for m in run_checks(tags=[Tags.compatibility])
        if str(m.id).startswith("kolo_django.") and not m.is_silenced()
    )


def test_valid_settings_pass() -> None:
    with override_settings(
        DEBUG=True,
        KOLO_DJANGO={
            "ENABLED": None,
            "IGNORE_PATHS": [r"^/health$"],
            "MAX_EVENTS": 10,
            "LOG_LEVEL": 20,
            "RETENTION_MAX_TRACES": None,
            "REDACT_KEYS": ["iban"],
        },
    ):
        assert kolo_ids() == []


def test_e001_not_a_dict() -> None:
    with override_settings(KOLO_DJANGO=[("ENABLED", True)]):
        (message,) = check_settings()
        assert isinstance(message, Error) and message.id == "kolo_django.E001"
        assert kolo_ids() == ["kolo_django.E001"]


@pytest.mark.parametrize(
    ("value", "phrase"),
    [
        ({"ENABLED": "yes"}, "ENABLED must be bool or None, not str"),
        ({"MAX_BODY_BYTES": True}, "not bool"),
        ({"MAX_BODY_BYTES": -1}, "at least 0"),
        ({"MAX_EVENTS": 9}, "at least 10"),
        ({"RETENTION_MAX_TRACES": 0}, "at least 1"),
        ({"RECORD_DURING_TESTS": None}, "must not be None"),
        ({"IGNORE_PATHS": ["("]}, "invalid regular expression"),
        ({"IGNORE_PATHS": "^/x"}, "must be list or tuple"),
        ({"REDACT_KEYS": [3]}, "only strings"),
        ({"CALLS_INCLUDE": [None]}, "only strings"),
        ({"LOG_LEVEL": "LOUD"}, "not a logging level"),
        ({"RETENTION_MAX_AGE_DAYS": "14"}, "RETENTION_MAX_AGE_DAYS must be"),
    ],
)
def test_e002_invalid_value(value: dict[str, Any], phrase: str) -> None:
    with override_settings(KOLO_DJANGO=value):
        messages = check_settings()
        assert [m.id for m in messages] == ["kolo_django.E002"]
        assert phrase in messages[0].msg
        assert kolo_ids() == ["kolo_django.E002"]


def test_e003_unknown_database_alias() -> None:
    with override_settings(KOLO_DJANGO={"DATABASE_ALIAS": "traces"}):
        assert [m.id for m in check_settings()] == ["kolo_django.E003"]
        assert kolo_ids() == ["kolo_django.E003"]


def test_w001_forced_on_without_debug() -> None:
    with override_settings(DEBUG=False, KOLO_DJANGO={"ENABLED": True}):
        (message,) = check_settings()
        assert isinstance(message, Warning) and message.id == "kolo_django.W001"
    with override_settings(DEBUG=True, KOLO_DJANGO={"ENABLED": True}):
        assert check_settings() == []
    with override_settings(DEBUG=False, KOLO_DJANGO={"ENABLED": None}):
        assert check_settings() == []


def test_w001_can_be_silenced() -> None:
    with override_settings(DEBUG=False, KOLO_DJANGO={"ENABLED": True}):
        with override_settings(SILENCED_SYSTEM_CHECKS=[]):
            assert kolo_ids() == ["kolo_django.W001"]
        with override_settings(SILENCED_SYSTEM_CHECKS=["kolo_django.W001"]):
            assert kolo_ids() == []


def test_w002_unknown_key() -> None:
    with override_settings(KOLO_DJANGO={"ENABLE": True}):
        (message,) = check_settings()
        assert message.id == "kolo_django.W002" and "'ENABLE'" in message.msg


def test_w003_middleware_missing() -> None:
    without = [m for m in settings.MIDDLEWARE if m != MIDDLEWARE_PATH]
    with override_settings(MIDDLEWARE=without):
        assert [m.id for m in check_middleware()] == ["kolo_django.W003"]
        assert kolo_ids() == ["kolo_django.W003"]


def test_w004_middleware_not_first() -> None:
    without = [m for m in settings.MIDDLEWARE if m != MIDDLEWARE_PATH]
    with override_settings(MIDDLEWARE=[*without, MIDDLEWARE_PATH]):
        assert [m.id for m in check_middleware()] == ["kolo_django.W004"]
    assert check_middleware() == []


def test_several_problems_reported_together() -> None:
    with override_settings(
        DEBUG=False,
        KOLO_DJANGO={"ENABLED": True, "MAX_EVENTS": 1, "COLOUR": "red", "DATABASE_ALIAS": "x"},
        SILENCED_SYSTEM_CHECKS=[],
    ):
        assert kolo_ids() == [
            "kolo_django.E002",
            "kolo_django.E003",
            "kolo_django.W001",
            "kolo_django.W002",
        ]
