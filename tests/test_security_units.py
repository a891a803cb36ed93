"""The redaction helpers one by one, and the cases the acceptance test does not
reach: cut reprs, hashes inside text, base64, async ``sensitive_variables``,
REDACT_KEYS everywhere a key can be."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.test import AsyncClient, Client, override_settings
from django.urls import path
from django.views.decorators.debug import sensitive_variables

from kolo_django import storage, trace
from kolo_django.recording.redact import (
    REDACTED,
    collect,
    collect_cookies,
    redact_data,
    redact_text,
    scrub,
)
from tests.helpers_recording import documents, events, recording_settings

LONG_SECRET = "s3cr3t-" + "x" * 300


def test_secret_keyed_pairs_in_text() -> None:
    secrets: set[str] = set()
    text = redact_text(
        'a=1&password=hunter%2A22&token=&next=/x {"api_key": "k-123456", "n": 1}',
        secrets,
    )
    assert text == 'a=1&password=%5BREDACTED%5D&token=&next=/x {"api_key": "[REDACTED]", "n": 1}'
    assert {"hunter*22", "k-123456"} <= secrets


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # At the very start, after each delimiter, with an encoded key.
        ("token=t-000001", "token=%5BREDACTED%5D"),
        ("/x?api%5Fkey=k-000002;b=1", "/x?api%5Fkey=%5BREDACTED%5D;b=1"),
        ("a=1\npassword=p-000003 b=2", "a=1\npassword=%5BREDACTED%5D b=2"),
        ("&&password=p-000004&", "&&password=%5BREDACTED%5D&"),
        # Kept: not a secret key, a key beyond 200 characters, no value.
        ("title=p-000005", "title=p-000005"),
        ("a" * 200 + "password=p-000006", "a" * 200 + "password=p-000006"),
        ("password=", "password="),
    ],
)
def test_secret_keyed_form_pairs(text: str, expected: str) -> None:
    secrets: set[str] = set()
    assert redact_text(text, secrets) == expected
    if expected != text:
        assert any(s.startswith(("t-", "k-", "p-")) for s in secrets)


def test_html_inputs() -> None:
    secrets: set[str] = set()
    html = (
        '<input type="hidden" name="csrfmiddlewaretoken" value="abcdef123456">'
        "<input name='title' value='kept'><input value=\"zz-secret-1\" name=\"password\">"
    )
    out = redact_text(html, secrets, form=False, html=True)
    assert out == (
        f'<input type="hidden" name="csrfmiddlewaretoken" value="{REDACTED}">'
        f"<input name='title' value='kept'><input value=\"{REDACTED}\" name=\"password\">"
    )
    assert {"abcdef123456", "zz-secret-1"} <= secrets


def test_json_lists_and_nested_objects() -> None:
    secrets: set[str] = set()
    data = [{"token": "t-0001"}, {"items": [{"client_secret": "c-0002", "x": [1]}]}]
    assert redact_data(data, secrets) == [
        {"token": REDACTED},
        {"items": [{"client_secret": REDACTED, "x": [1]}]},
    ]
    assert secrets == {"t-0001", "c-0002"}


def test_credentials_and_cookies_are_collected_alone() -> None:
    secrets: set[str] = set()
    collect("Bearer abcd-efgh-1234", secrets)
    basic = base64.b64encode(b"carol:open-sesame").decode()
    collect(f"Basic {basic}", secrets)
    collect_cookies("sessionid=0123456789abcdef; Path=/; HttpOnly, csrftoken=ZYXWVU987654", secrets)
    assert {"abcd-efgh-1234", "open-sesame", "0123456789abcdef", "ZYXWVU987654"} <= secrets


@override_settings(SECRET_KEY="current-secret-key-0001", SECRET_KEY_FALLBACKS=["old-key-0002"])
def test_scrub_everywhere() -> None:
    hashed = "pbkdf2_sha256$870000$salt$digestdigestdigest="
    document = {
        "log": "keys current-secret-key-0001 and old-key-0002",
        "repr": f"{{'user': '{hashed}'}}",
        "column": "md5$abc$0123456789abcdef",
        "quoted": "next=%2Fx%3Fk%3Dv%26p%3Dsecret%2Fvalue",
        "cut": "'" + LONG_SECRET[:150] + "…",
        "file": {"base64": base64.b64encode(b"header " + LONG_SECRET.encode()).decode()},
        "bytes": {"$t": "bytes", "v": base64.b64encode(b"x current-secret-key-0001").decode()},
        "events": [{"sql": "SELECT %s", "params": ["k=v&p=secret/value"]}],
        # Keys are structure: never rewritten.
        "secret/value": 1,
    }
    out = scrub(document, {"k=v&p=secret/value", LONG_SECRET})
    assert out["log"] == f"keys {REDACTED} and {REDACTED}"
    assert out["repr"] == f"{{'user': '{REDACTED}'}}"
    assert out["column"] == REDACTED
    assert out["quoted"] == f"next=%2Fx%3F{REDACTED}"
    assert out["cut"] == f"'{REDACTED}…"
    assert base64.b64decode(out["file"]["base64"]) == f"header {REDACTED}".encode()
    assert base64.b64decode(out["bytes"]["v"]) == f"x {REDACTED}".encode()
    assert out["events"][0]["params"] == [REDACTED]
    assert "secret/value" in out


# --- in requests ------------------------------------------------------------------------------


@sensitive_variables("code")
async def _async_sensitive(request: HttpRequest) -> JsonResponse:
    code = request.GET["c"]
    await asyncio.sleep(0)
    return JsonResponse({"length": len(code)})


def _echo(request: HttpRequest) -> HttpResponse:
    return HttpResponse(request.body or b"-", content_type="text/plain")


urlpatterns = [path("async-sensitive/", _async_sensitive), path("echo/", _echo)]


@pytest.mark.urls(__name__)
@override_settings(KOLO_DJANGO=recording_settings(CALLS_INCLUDE=[__name__]))
def test_async_sensitive_variables(traces: Any, db: None) -> None:
    async def run() -> Any:
        return await AsyncClient().get("/async-sensitive/", {"c": "one-time-code-4471"})

    assert async_to_sync(run)().json() == {"length": 18}
    (document,) = documents(traces)
    (call,) = [e for e in events(document, "call") if e["function"] == "_async_sensitive"]
    (ret,) = events(document, "return", id=call["id"])
    assert ret["locals"]["code"] == REDACTED
    # Named values are scrubbed everywhere: here, the query string too.
    assert "one-time-code-4471" not in json.dumps(document)


@pytest.mark.urls(__name__)
@override_settings(KOLO_DJANGO=recording_settings(REDACT_KEYS=[r"^iban$"]))
def test_redact_keys_reach_query_raw_bodies_and_responses(traces: Any, db: None) -> None:
    client = Client()
    client.get("/echo/?iban=DE89370400440532013000")
    client.post("/echo/", "iban=FR7630006000011234567890189&x=1", content_type="text/plain")
    client.post("/echo/", '{"iban": "GB29NWBK60161331926819"}', content_type="text/plain")
    text = json.dumps(documents(traces))
    for iban in ("DE89370400440532013000", "FR7630006000011234567890189", "GB29NWBK60161331926819"):
        assert iban not in text
    assert text.count(REDACTED) >= 5


@override_settings(SECRET_KEY="current-secret-key-0001", SECRET_KEY_FALLBACKS=[])
@pytest.mark.parametrize(
    "value",
    [
        "nothing to see",
        "a current-secret-key-0001 b",
        "pbkdf2_sha256$870000$salt$digest",
        "x md5$abc$0123",
        "'" + LONG_SECRET[:40] + "…",
        "'" + LONG_SECRET[:7] + "…",
        'say "s3cr3t-xxxxxxxxxx…',
        {"$t": "bytes", "v": base64.b64encode(b"current-secret-key-0001").decode()},
        {"content_base64": base64.b64encode(b"plain").decode()},
        ['tab\tsecret\\with"quotes', 3, None],
    ],
)
def test_stored_form_is_scrubbed_like_the_document(value: Any) -> None:
    """The quick test of the JSON text decides only whether the document is
    walked: what is stored is what scrub() makes of it."""
    secrets = {LONG_SECRET, 'tab\tsecret\\with"quotes'}
    events_ = [{"type": "log", "message": "x"}] * 600 + [{"type": "log", "message": value}]
    document = {
        "schema_version": trace.SCHEMA_VERSION,
        "id": trace.new_trace_id(),
        "value": value,
        "events": events_,
    }
    expected = scrub(json.loads(json.dumps(document)), set(secrets))
    row = storage._prepare(json.loads(json.dumps(document)), set(secrets))
    assert row is not None
    stored = trace.loads(row.document)
    assert stored == expected
