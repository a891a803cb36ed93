"""Safe by default: no recording without DEBUG unless forced (and then warned
about), none during test runs, and the stored traces readable by staff with
permission only."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core import mail
from django.core.checks import Tags, run_checks
from django.test import Client, override_settings
from django.test.utils import _TestState

from kolo_django.conf import is_test_run, recording_enabled


@pytest.fixture
def outside_a_test_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """As in a development server: setup_test_environment() never ran."""
    monkeypatch.delattr(_TestState, "saved_data")
    monkeypatch.delattr(mail, "outbox")


@pytest.mark.parametrize(
    ("debug", "kolo", "recorded"),
    [
        (False, {}, False),  # production-like: off
        (True, {}, True),  # development: on
        (False, {"ENABLED": True}, True),  # forced on: warned about by W001
        (True, {"ENABLED": False}, False),
    ],
)
def test_recording_follows_debug_unless_forced(
    client: Client, traces: Any, outside_a_test_run: None, debug: bool, kolo: Any, recorded: bool
) -> None:
    # Stored in the request: the writer thread's own connection would wait for
    # this test's transaction (tests/test_storage.py covers the writer).
    with override_settings(DEBUG=debug, KOLO_DJANGO={**kolo, "STORE_IN_BACKGROUND": False}):
        assert recording_enabled() is recorded
        assert client.get("/stats/").status_code == 200
    assert traces.count() == int(recorded)


def test_forcing_it_on_without_debug_is_warned_about() -> None:
    with override_settings(DEBUG=False, KOLO_DJANGO={"ENABLED": True}, SILENCED_SYSTEM_CHECKS=[]):
        warnings = [m for m in run_checks(tags=[Tags.compatibility]) if m.id == "kolo_django.W001"]
    assert len(warnings) == 1
    assert warnings[0].msg == "Recording is forced on while DEBUG is False."
    with override_settings(DEBUG=True, KOLO_DJANGO={"ENABLED": True}, SILENCED_SYSTEM_CHECKS=[]):
        assert not [m for m in run_checks(tags=[Tags.compatibility]) if m.id.endswith("W001")]


@pytest.mark.parametrize("kolo", [{}, {"ENABLED": True}])
def test_off_during_test_runs(client: Client, traces: Any, kolo: Any) -> None:
    assert is_test_run()
    with override_settings(DEBUG=True, KOLO_DJANGO=kolo):
        assert client.get("/stats/").status_code == 200
    assert not traces.exists()


def test_a_locmem_mail_backend_does_not_look_like_a_test_run(
    client: Client, traces: Any, outside_a_test_run: None
) -> None:
    """The locmem backend creates mail.outbox by itself: a development server
    using it must go on recording after the first mail."""
    with override_settings(
        DEBUG=True,
        KOLO_DJANGO={"STORE_IN_BACKGROUND": False},
        EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend",
    ):
        mail.send_mail("s", "b", None, ["x@example.com"])
        assert hasattr(mail, "outbox")
        assert not is_test_run()
        client.get("/stats/")
    assert traces.count() == 1


@pytest.mark.parametrize(
    ("who", "status"),
    [("anonymous", 302), ("not staff", 302), ("staff without permission", 403), ("viewer", 200)],
)
def test_traces_are_for_staff_with_permission(
    client: Client, traces: Any, db: None, who: str, status: int
) -> None:
    """The admin pages (kolo_django/admin.py) follow Django's admin rules."""
    User = get_user_model()
    if who != "anonymous":
        user = User.objects.create_user(
            "someone", password="pw-someone", is_staff=who != "not staff"
        )
        if who == "viewer":
            user.user_permissions.add(Permission.objects.get(codename="view_trace"))
        client.force_login(user)
    response = client.get("/admin/kolo_django/trace/")
    assert response.status_code == status
    if status == 302:
        assert response["Location"].startswith("/admin/login/")
