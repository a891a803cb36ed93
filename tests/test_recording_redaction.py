"""Secrets never reach the stored trace, wherever the request carried them."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.db import SessionStore
from django.test import Client, override_settings

from tests.helpers_recording import document_text, events, only_trace


def _secrets_of_login(client: Client) -> dict[str, str]:
    alice = get_user_model().objects.get(username="alice")
    session_key = client.cookies[settings.SESSION_COOKIE_NAME].value
    session = SessionStore(session_key=session_key)
    found = {
        "password": "alice-password",
        "password hash": alice.password,
        "password hash digest": alice.password.rsplit("$", 1)[-1],
        "session key": session_key,
        "session auth hash": session["_auth_user_hash"],
        "csrftoken cookie": client.cookies[settings.CSRF_COOKIE_NAME].value,
        "SECRET_KEY": settings.SECRET_KEY,
    }
    assert all(len(value) >= 8 for value in found.values()), found
    return found


def test_login_leaves_no_secret(client: Client, traces: Any, seeded: None) -> None:
    assert client.get("/accounts/login/").status_code == 200
    traces.all().delete()
    response = client.post(
        "/accounts/login/", {"username": "alice", "password": "alice-password", "next": "/stats/"}
    )
    assert response.status_code == 302 and response["Location"] == "/stats/"
    obj, document = only_trace(traces)
    text = document_text(obj)
    leaked = {name: value for name, value in _secrets_of_login(client).items() if value in text}
    assert leaked == {}
    # Still a useful trace: who logged in, and the form's shape.
    assert document["request"]["body"]["form"]["password"] == ["[REDACTED]"]
    assert document["response"]["cookies"] == sorted(["csrftoken", "sessionid"])
    assert events(document, "orm", model="auth.user")
    assert "set-cookie" not in {k.lower() for k in document["response"]["headers"]} or all(
        v == "[REDACTED]"
        for k, v in document["response"]["headers"].items()
        if k.lower() == "set-cookie"
    )


def test_request_after_login_leaves_no_secret(client: Client, traces: Any, seeded: None) -> None:
    client.post("/accounts/login/", {"username": "alice", "password": "alice-password"})
    traces.all().delete()
    assert client.get("/dashboard/").status_code == 200
    obj, document = only_trace(traces)
    text = document_text(obj)
    leaked = {name: value for name, value in _secrets_of_login(client).items() if value in text}
    assert leaked == {}
    assert document["request"]["user"]["username"] == "alice"
    # The session as it was read, with its secret member hidden.
    assert document["request"]["session"]["_auth_user_hash"] == "[REDACTED]"


def test_basic_auth_password_is_absent(client: Client, traces: Any, seeded: None) -> None:
    encoded = base64.b64encode(b"alice:alice-password").decode()
    assert client.get("/api/whoami/", HTTP_AUTHORIZATION=f"Basic {encoded}").status_code == 200
    obj, document = only_trace(traces)
    text = document_text(obj)
    assert "alice-password" not in text
    assert encoded not in text
    assert get_user_model().objects.get(username="alice").password not in text
    assert document["request"]["auth"] == {"scheme": "basic", "username": "alice"}


def test_secret_json_keys_are_redacted(client: Client, traces: Any, seeded: None) -> None:
    from todos.models import TodoList

    payload = {
        "title": "t",
        "todo_list": TodoList.objects.first().pk,
        "api_key": "sk-live-abcdef123",
        "nested": {"password": "hunter2-hunter2"},
    }
    response = client.post("/api/todos/", payload, content_type="application/json")
    assert response.status_code == 201
    obj, document = only_trace(traces)
    text = document_text(obj)
    assert "sk-live-abcdef123" not in text and "hunter2-hunter2" not in text
    assert document["request"]["body"]["json"]["api_key"] == "[REDACTED]"
    assert document["request"]["body"]["json"]["nested"] == {"password": "[REDACTED]"}
    assert document["request"]["body"]["json"]["title"] == "t"


@pytest.mark.parametrize("header", ["HTTP_X_API_KEY", "HTTP_AUTHORIZATION", "HTTP_X_CSRFTOKEN"])
def test_secret_headers_are_redacted(client: Client, traces: Any, db: None, header: str) -> None:
    client.get("/todos/", **{header: "Token s3cr3t-value-123"})
    obj, document = only_trace(traces)
    assert "s3cr3t-value-123" not in document_text(obj)


@override_settings(
    KOLO_DJANGO={"ENABLED": True, "RECORD_DURING_TESTS": True, "REDACT_KEYS": ["^title$"]}
)
def test_redact_keys_setting(client: Client, traces: Any, seeded: None) -> None:
    from todos.models import TodoList

    payload = {"title": "Confidential title", "todo_list": TodoList.objects.first().pk}
    assert client.post("/api/todos/", payload, content_type="application/json").status_code == 201
    obj, document = only_trace(traces)
    assert document["request"]["body"]["json"]["title"] == "[REDACTED]"
    # Once seen under a secret key, the value is scrubbed everywhere (SQL params, response).
    assert "Confidential title" not in json.dumps(document)
