"""The KOLO_DJANGO settings: defaults, overrides, and when recording is on."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import mail
from django.test import override_settings

from kolo_django.conf import CONFIG_DEFAULTS, get_config, ignore_patterns, recording_enabled

ON_IN_TESTS = {"RECORD_DURING_TESTS": True}


def test_defaults_under_user_values() -> None:
    with override_settings(KOLO_DJANGO={}):
        assert get_config() == {key: default for key, (default, _) in CONFIG_DEFAULTS.items()}
    with override_settings(KOLO_DJANGO={"MAX_EVENTS": 50, "LOG_LEVEL": "error"}):
        config = get_config()
        assert (config["MAX_EVENTS"], config["LOG_LEVEL"]) == (50, "error")
        assert config["MAX_ROWS_PER_QUERY"] == CONFIG_DEFAULTS["MAX_ROWS_PER_QUERY"][0]
    # Back to the suite's own settings once the override ends.
    assert get_config()["MAX_EVENTS"] == CONFIG_DEFAULTS["MAX_EVENTS"][0]
    assert get_config()["RECORD_DURING_TESTS"] is True


def test_cached_until_the_setting_changes() -> None:
    assert get_config() is get_config()
    before = get_config()
    with override_settings(KOLO_DJANGO={"MAX_LOCALS": 3}):
        assert get_config() is not before
        assert get_config()["MAX_LOCALS"] == 3


@pytest.mark.parametrize(
    "bad",
    [
        {"MAX_EVENTS": 5},
        {"MAX_EVENTS": "many"},
        {"MAX_EVENTS": True},
        {"IGNORE_PATHS": ["("]},
        {"IGNORE_PATHS": "^/x/"},
        {"LOG_LEVEL": "LOUD"},
        {"ENABLED": "yes"},
        {"RETENTION_MAX_TRACES": 0},
    ],
)
def test_invalid_values_fall_back_to_defaults(bad: dict[str, Any]) -> None:
    ((key, _value),) = bad.items()
    with override_settings(KOLO_DJANGO=bad):
        assert get_config()[key] == CONFIG_DEFAULTS[key][0]


def test_not_a_dict_means_defaults() -> None:
    with override_settings(KOLO_DJANGO=["ENABLED"]):
        assert get_config()["ENABLED"] is None


@pytest.mark.parametrize(
    ("debug", "kolo", "expected"),
    [
        (False, {**ON_IN_TESTS}, False),
        (True, {**ON_IN_TESTS}, True),
        (False, {**ON_IN_TESTS, "ENABLED": True}, True),
        (True, {**ON_IN_TESTS, "ENABLED": False}, False),
        (True, {"ENABLED": True}, False),
        (True, {}, False),
    ],
)
def test_recording_enabled(debug: bool, kolo: dict[str, Any], expected: bool) -> None:
    with override_settings(DEBUG=debug, KOLO_DJANGO=kolo):
        assert recording_enabled() is expected


def test_outside_a_test_run(monkeypatch: pytest.MonkeyPatch) -> None:
    # setup_test_environment() installs mail.outbox; without it this is not a test run.
    monkeypatch.delattr(mail, "outbox")
    with override_settings(DEBUG=True, KOLO_DJANGO={}):
        assert recording_enabled() is True
    with override_settings(DEBUG=False, KOLO_DJANGO={}):
        assert recording_enabled() is False


def test_ignore_patterns_include_static_and_media() -> None:
    with override_settings(STATIC_URL="/assets/", MEDIA_URL="/uploads/"):
        patterns = ignore_patterns()
        assert any(p.search("/assets/app.css") for p in patterns)
        assert any(p.search("/uploads/a.png") for p in patterns)
        assert not any(p.search("/todos/") for p in patterns)
    with override_settings(KOLO_DJANGO={"IGNORE_PATHS": [r"^/health$"]}):
        assert any(p.search("/health") for p in ignore_patterns())
