"""Acceptance: known secrets sent through every kind of request never reach a
stored document (its decompressed JSON, base64 contents decoded) nor a test
generated from one."""

from __future__ import annotations

import base64
import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.db import SessionStore
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.mail import send_mail
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template import RequestContext, Template
from django.test import Client, override_settings
from django.urls import include, path
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables

from kolo_django.generation.api import generate
from tests.helpers_recording import documents, events, stub_api

PASSWORD = "Carol-Pa55word-9931"
BEARER = "bearer-tok-8f3a9c1e77d2"
OUTBOUND_TOKEN = "outbound-api-tok-5521ab"
PIN = "pin-77134-harmless-name"  # a sensitive POST parameter under a name that looks harmless
CARD = "card-4111-1111-1111-1111"  # a local marked by @sensitive_variables
HIDDEN = "all-hidden-value-6620"  # a local of a @sensitive_variables() function
CLIENT_SECRET = "client-secret-xyz-0987"

logger = logging.getLogger("todos.security")

MASKED_TOKEN_RE = re.compile(r"""(?:value|content)=["']([A-Za-z0-9]{64})["']""")


@sensitive_variables("card")
def charge(amount: int) -> int:
    card = CARD
    return amount * 2 if card else 0


@sensitive_variables()
def all_hidden(value: str) -> str:
    shadow = HIDDEN + value
    return shadow


def form_page(request: HttpRequest) -> HttpResponse:
    # A form token and a meta tag: two masked CSRF tokens in the page.
    template = Template(
        '<meta name="csrf-token" content="{{ csrf_token }}"><form>{% csrf_token %}</form>'
    )
    return HttpResponse(template.render(RequestContext(request, {})))


@sensitive_post_parameters("pin")
def everything(request: HttpRequest) -> JsonResponse:
    auth = request.headers.get("Authorization", "")
    bearer = auth.partition(" ")[2]  # a local with a harmless name
    if request.content_type == "application/json":
        payload = json.loads(request.body)
    elif request.method == "POST":
        payload = request.POST.dict()
        for upload in request.FILES.values():
            payload["upload"] = upload.read().decode()
    else:
        payload = request.GET.dict()
    pin = payload.get("pin", "")
    material = settings.SECRET_KEY
    logger.warning(
        "auth %s pin %s key %s password %s", bearer, pin, material, payload.get("password")
    )
    send_mail(
        "Receipt",
        f"pin {pin} bearer {bearer} key {material} password {payload.get('password')}",
        None,
        ["someone@example.com"],
    )
    echoed = requests.post(
        f"{settings.EXAMPLE_API_URL}/echo",
        json={"client_secret": CLIENT_SECRET, "pin": pin, "note": bearer},
        headers={"Authorization": f"Bearer {OUTBOUND_TOKEN}"},
        timeout=5,
    ).json()
    charge(3)
    all_hidden(pin)
    carol = get_user_model().objects.get(username="carol")
    return JsonResponse({"ok": True, "user": carol.username, "echoed": sorted(echoed)})


urlpatterns = [
    path("form-page/", form_page),
    path("everything/", everything),
    path("", include("example.urls")),
]


@pytest.fixture
def api_url() -> Iterator[str]:
    with stub_api() as url, override_settings(EXAMPLE_API_URL=url):
        yield url


def _decoded_base64(document: Any) -> Iterator[str]:
    """Every base64 content in the document, decoded (file contents, bodies)."""
    if isinstance(document, dict):
        for key, value in document.items():
            if isinstance(value, str) and (key.endswith("base64") or document.get("$t") == "bytes"):
                try:
                    yield base64.b64decode(value).decode("utf-8", "replace")
                except ValueError:
                    pass
            else:
                yield from _decoded_base64(value)
    elif isinstance(document, list):
        for item in document:
            yield from _decoded_base64(item)


def _leaks(text: str, secrets: dict[str, str]) -> dict[str, str]:
    return {name: value for name, value in secrets.items() if value in text}


@pytest.mark.urls(__name__)
@override_settings(
    KOLO_DJANGO={
        "ENABLED": True,
        "RECORD_DURING_TESTS": True,
        "RETENTION_MAX_AGE_DAYS": None,
        "CALLS_INCLUDE": [__name__],
        "LOG_LEVEL": "INFO",
    }
)
def test_no_secret_reaches_documents_or_generated_tests(traces: Any, api_url: str) -> None:
    carol = get_user_model().objects.create_user("carol", password=PASSWORD)
    client = Client(enforce_csrf_checks=True)
    sent: list[tuple[str, int]] = []
    masked: set[str] = set()

    def hit(method: str, url: str, expected: int, **kwargs: Any) -> Any:
        response = getattr(client, method)(url, **kwargs)
        assert response.status_code == expected, (url, response.content[:300])
        sent.append((url, expected))
        masked.update(MASKED_TOKEN_RE.findall(response.content.decode("utf-8", "replace")))
        return response

    hit("get", "/accounts/login/", 200)
    token = next(iter(masked))
    hit(
        "post",
        "/accounts/login/",
        302,
        data={"username": "carol", "password": PASSWORD, "csrfmiddlewaretoken": token},
    )
    # Login rotates the CSRF secret: take a token made after it.
    page = hit("get", "/form-page/", 200)
    token = MASKED_TOKEN_RE.findall(page.content.decode())[-1]
    csrf_cookie = client.cookies[settings.CSRF_COOKIE_NAME].value
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {BEARER}"}
    # A form, with a sensitive parameter under a harmless name.
    hit(
        "post",
        "/everything/",
        200,
        data={"username": "carol", "password": PASSWORD, "pin": PIN, "csrfmiddlewaretoken": token},
        **bearer,
    )
    # JSON, with the CSRF token in a header.
    hit(
        "post",
        "/everything/",
        200,
        data={"password": PASSWORD, "pin": PIN, "token": BEARER, "note": f"key {BEARER}"},
        content_type="application/json",
        HTTP_X_CSRFTOKEN=csrf_cookie,
        **bearer,
    )
    # Multipart, with the secrets inside an uploaded file too.
    upload = SimpleUploadedFile("notes.txt", f"password={PASSWORD} bearer={BEARER}".encode())
    hit(
        "post",
        "/everything/",
        200,
        data={"pin": PIN, "password": PASSWORD, "csrfmiddlewaretoken": token, "file": upload},
        **bearer,
    )
    # A query string.
    hit("get", f"/everything/?api_key={BEARER}&pin={PIN}&password={PASSWORD}", 200, **bearer)

    session_key = client.cookies[settings.SESSION_COOKIE_NAME].value
    carol.refresh_from_db()
    secrets = {
        "password": PASSWORD,
        "password hash": carol.password,
        "password hash digest": carol.password.rsplit("$", 1)[-1],
        "bearer token": BEARER,
        "outbound token": OUTBOUND_TOKEN,
        "client secret": CLIENT_SECRET,
        "sensitive POST parameter": PIN,
        "sensitive variable": CARD,
        "all-sensitive variable": HIDDEN,
        "session cookie": session_key,
        "session auth hash": SessionStore(session_key=session_key)["_auth_user_hash"],
        "CSRF cookie": csrf_cookie,
        "SECRET_KEY": settings.SECRET_KEY,
    }
    secrets.update({f"masked CSRF token {i}": t for i, t in enumerate(sorted(masked))})
    assert len(masked) >= 2  # the login page's, and the form page's
    assert all(len(value) >= 8 for value in secrets.values()), secrets

    stored = documents(traces)
    # Every request was recorded (none dropped by a fault), in order.
    assert [d["request"]["path"] for d in stored] == [url.split("?")[0] for url, _ in sent]
    assert all(d["faults"] == [] for d in stored)
    for document in stored:
        text = json.dumps(document, ensure_ascii=False)
        assert _leaks(text, secrets) == {}, document["request"]["path"]
        for decoded in _decoded_base64(document):
            assert _leaks(decoded, secrets) == {}
        # Also as stored, before upgrade/decoding.
    for obj in traces.all():
        raw = json.dumps(obj.load_document())
        assert _leaks(raw, secrets) == {}

    # The secrets were really there to be hidden: every kind of capture saw them.
    form, js, multipart, query = stored[3:]
    assert form["request"]["body"]["form"]["pin"] == ["[REDACTED]"]
    assert form["request"]["body"]["form"]["username"] == ["carol"]
    assert js["request"]["body"]["json"]["pin"] == "[REDACTED]"
    assert js["request"]["body"]["json"]["note"] == "key [REDACTED]"
    assert multipart["request"]["body"]["files"][0]["name"] == "notes.txt"
    assert query["request"]["query"]["api_key"] == ["[REDACTED]"]
    for document in (form, js, multipart, query):
        assert document["request"]["headers"]["Authorization"] == "[REDACTED]"
        assert document["request"]["auth"] == {"scheme": "bearer"}
        (http,) = events(document, "http")
        assert http["request_headers"]["Authorization"] == "[REDACTED]"
        assert http["request"]["json"]["client_secret"] == "[REDACTED]"
        (mail,) = events(document, "mail")
        assert "[REDACTED]" in mail["body"]
        (log,) = [e for e in events(document, "log") if e["logger"] == "todos.security"]
        assert log["message"].count("[REDACTED]") >= 3
        (charged,) = [e for e in events(document, "call") if e["function"] == "charge"]
        (returned,) = events(document, "return", id=charged["id"])
        assert returned["locals"]["card"] == "[REDACTED]"
        assert returned["value"] == "6"
        (hidden,) = [e for e in events(document, "call") if e["function"] == "all_hidden"]
        (returned,) = events(document, "return", id=hidden["id"])
        assert set(returned["locals"].values()) == {"[REDACTED]"}
        assert returned["value"] == "[REDACTED]"
        orm_users = events(document, "orm", model="auth.user")
        assert orm_users and all("[REDACTED]" in row for e in orm_users for row in e["rows"])

    # Generated tests: one per trace, and one replaying them all.
    for group in [[d] for d in stored] + [stored]:
        source, _context = generate(group, style="pytest", formatter="none")
        assert _leaks(source, secrets) == {}, [d["request"]["path"] for d in group]


@pytest.mark.urls(__name__)
def test_sensitive_post_parameters_without_names_hides_the_body_only(traces: Any, db: None) -> None:
    """``sensitive_post_parameters()`` (all of them) hides every posted value in
    the body, but does not scrub them elsewhere: the username stays usable."""
    get_user_model().objects.create_user("carol", password=PASSWORD)
    client = Client()
    response = client.post("/accounts/login/", {"username": "carol", "password": PASSWORD})
    assert response.status_code == 302
    (document,) = documents(traces)
    assert document["request"]["body"]["form"] == {
        "username": ["[REDACTED]"],
        "password": ["[REDACTED]"],
    }
    text = json.dumps(document)
    assert PASSWORD not in text
    assert document["request"]["user"]["username"] == "carol"
    assert any("carol" in json.dumps(e.get("params")) for e in events(document, "sql"))
