"""Request and response bodies: kept as the view received them, within the size limits."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import HttpRequest, HttpResponse
from django.test import Client, override_settings
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt

from tests.helpers_recording import only_trace


@csrf_exempt
def _stream_reader(request: HttpRequest) -> HttpResponse:
    # Reads the stream itself, so request.body is gone afterwards.
    return HttpResponse(str(len(request.read())))


@csrf_exempt
def _echo(request: HttpRequest) -> HttpResponse:
    return HttpResponse(request.body, content_type=request.content_type or "text/plain")


urlpatterns = [
    path("stream/", _stream_reader),
    path("echo/", _echo),
    path("", include("example.urls")),
]

pytestmark = pytest.mark.urls(__name__)

LIMITS = {
    "ENABLED": True,
    "RECORD_DURING_TESTS": True,
    "MAX_BODY_BYTES": 100,
    "MAX_FILE_BYTES": 10,
    "MAX_RESPONSE_BYTES": 50,
}


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1000)
@pytest.mark.parametrize(
    "content_type", ["application/json", "text/plain", "application/x-www-form-urlencoded"]
)
def test_body_over_djangos_limit_still_gives_a_trace(
    client: Client, traces: Any, db: None, content_type: str
) -> None:
    data = "title=" + "x" * 2000
    response = client.post("/api/todos/", data, content_type=content_type)
    assert response.status_code == 400
    obj, document = only_trace(traces)
    assert (obj.path, obj.status_code) == ("/api/todos/", 400)
    body = document["request"]["body"]
    if content_type == "application/x-www-form-urlencoded":
        assert body["kind"] == "form"
    else:
        assert body["kind"] == "unreadable" and "RequestDataTooBig" in body["error"]


def test_view_that_read_the_stream(client: Client, traces: Any, db: None) -> None:
    response = client.post("/stream/", b"raw bytes", content_type="application/octet-stream")
    assert response.content == b"9"
    _obj, document = only_trace(traces)
    assert document["request"]["body"]["kind"] == "unreadable"


def test_binary_and_text_bodies(client: Client, traces: Any, db: None) -> None:
    client.post("/echo/", b"\xff\xfe\x00binary", content_type="application/octet-stream")
    client.post("/echo/", "plain text é", content_type="text/plain; charset=utf-8")
    binary, text = (t.load_document() for t in traces.order_by("created_at", "id"))
    assert base64.b64decode(binary["request"]["body"]["base64"]) == b"\xff\xfe\x00binary"
    assert base64.b64decode(binary["response"]["content_base64"]) == b"\xff\xfe\x00binary"
    assert text["request"]["body"] == {"kind": "raw", "size": 13, "text": "plain text é"}
    assert text["response"]["content"] == "plain text é"


@override_settings(KOLO_DJANGO=LIMITS)
def test_size_limits(client: Client, traces: Any, seeded: None) -> None:
    long_json = json.dumps({"title": "t" * 200})
    client.post("/echo/", long_json, content_type="application/json")
    _obj, document = only_trace(traces)
    body = document["request"]["body"]
    # Too long to keep as JSON: kept as the first MAX_BODY_BYTES of text.
    assert body == {
        "kind": "raw",
        "size": len(long_json),
        "text": long_json[:100],
        "truncated": True,
    }
    response = document["response"]
    assert response["size"] == len(long_json)
    assert response["content"] == long_json[:50]
    assert response["content_truncated"] is True
    assert "json" not in response or response["json"] == json.loads(long_json)


@override_settings(KOLO_DJANGO=LIMITS)
def test_file_limit(client: Client, traces: Any, seeded: None, tmp_path: Any) -> None:
    from todos.models import Todo

    upload = SimpleUploadedFile("big.txt", b"0123456789abcdef", content_type="text/plain")
    with override_settings(MEDIA_ROOT=str(tmp_path)):
        client.post(f"/todos/{Todo.objects.first().pk}/attach/", {"file": upload})
    _obj, document = only_trace(traces)
    (file_info,) = document["request"]["body"]["files"]
    assert file_info["size"] == 16
    assert base64.b64decode(file_info["base64"]) == b"0123456789"
    assert file_info["truncated"] is True
