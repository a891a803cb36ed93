"""Outbound HTTP through requests, httpx, urllib3 and urllib.

The highest-level library used records the call; the layers below it see
``recorder.http_depth`` and stay quiet, so one call is one event.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import io
import json
import logging
from collections.abc import Iterator
from typing import Any

from .recorder import Recorder, current, fault
from .redact import redact_data, redact_mapping, redact_text

logger = logging.getLogger("kolo_django")


def _text(data: Any, cap: int, secrets: set[str]) -> dict[str, Any]:
    if data is None:
        return {}
    if isinstance(data, str):
        data = data.encode("utf-8")
    if not isinstance(data, (bytes, bytearray)):
        return {"body_note": f"not captured ({type(data).__name__})"}
    out: dict[str, Any] = {"size": len(data)}
    chunk = bytes(data[:cap])
    try:
        # Secret-keyed values of JSON and URL-encoded bodies (a token request's
        # client_secret, a login's password) are redacted in the text too.
        out["body"] = redact_text(chunk.decode("utf-8"), secrets)
    except UnicodeDecodeError:
        out["body_base64"] = base64.b64encode(chunk).decode("ascii")
    if len(data) > cap:
        out["truncated"] = True
    else:
        try:
            out["json"] = redact_data(json.loads(data), secrets)
        except (ValueError, UnicodeDecodeError):
            pass
    return out


@contextlib.contextmanager
def _outbound(
    library: str, method: str, url: str, headers: Any, body: Any
) -> Iterator[dict[str, Any] | None]:
    recorder = current()
    if recorder is None or recorder.mode is not None or getattr(recorder, "http_depth", 0):
        yield None
        return
    recorder.http_depth = 1
    event: dict[str, Any] | None = None
    started = recorder.elapsed_ms()
    try:
        cap = int(recorder.config["MAX_BODY_BYTES"])
        event = {
            "type": "http",
            "library": library,
            "method": str(method).upper(),
            # An API key in the query string is a secret like any other.
            "url": redact_text(str(url), recorder.secrets),
            "request_headers": redact_mapping(
                {str(k): str(v) for k, v in dict(headers or {}).items()}, recorder.secrets
            ),
            "request": _text(body, cap, recorder.secrets),
        }
    except Exception:
        fault("http", recorder, "an outbound request")
    try:
        yield event
    except Exception as exc:
        if event is not None:
            event["error"] = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        recorder.http_depth = 0
        if event is not None:
            try:
                event["duration_ms"] = round(recorder.elapsed_ms() - started, 3)
                recorder.add(event)
            except Exception:
                fault("http", recorder, "an outbound request")


def _response(
    event: dict[str, Any] | None, recorder: Recorder | None, status: int, headers: Any, content: Any
) -> None:
    if event is None or recorder is None:
        return
    try:
        event["status"] = int(status)
        event["response_headers"] = redact_mapping(
            {str(k): str(v) for k, v in dict(headers or {}).items()}, recorder.secrets
        )
        event["response"] = _text(
            content, int(recorder.config["MAX_RESPONSE_BYTES"]), recorder.secrets
        )
    except Exception:
        fault("http", recorder, "an outbound response")


def install_requests() -> None:
    try:
        import requests
    except ImportError:
        return
    original = requests.Session.send
    if getattr(original, "_kolo_django", False):
        return

    @functools.wraps(original)
    def send(self: Any, request: Any, **kwargs: Any) -> Any:
        with _outbound(
            "requests", request.method, request.url, request.headers, request.body
        ) as event:
            response = original(self, request, **kwargs)
            if event is not None:
                content = None if kwargs.get("stream") else response.content
                _response(event, current(), response.status_code, response.headers, content)
            return response

    send._kolo_django = True
    requests.Session.send = send  # type: ignore[method-assign]


def install_httpx() -> None:
    try:
        import httpx
    except ImportError:
        return
    original = httpx.Client.send
    if getattr(original, "_kolo_django", False):
        return

    @functools.wraps(original)
    def send(self: Any, request: Any, **kwargs: Any) -> Any:
        with _outbound(
            "httpx", request.method, request.url, request.headers, _httpx_body(request)
        ) as event:
            response = original(self, request, **kwargs)
            if event is not None:
                content = None if kwargs.get("stream") else response.read()
                _response(event, current(), response.status_code, response.headers, content)
            return response

    send._kolo_django = True
    httpx.Client.send = send  # type: ignore[method-assign]

    original_async = httpx.AsyncClient.send

    @functools.wraps(original_async)
    async def send_async(self: Any, request: Any, **kwargs: Any) -> Any:
        with _outbound(
            "httpx", request.method, request.url, request.headers, _httpx_body(request)
        ) as event:
            response = await original_async(self, request, **kwargs)
            if event is not None:
                content = None if kwargs.get("stream") else await response.aread()
                _response(event, current(), response.status_code, response.headers, content)
            return response

    httpx.AsyncClient.send = send_async  # type: ignore[method-assign]


def _httpx_body(request: Any) -> Any:
    try:
        return request.content
    except Exception:  # a streaming body not read yet
        return None


def install_urllib3() -> None:
    try:
        from urllib3 import connectionpool
    except ImportError:
        return
    original = connectionpool.HTTPConnectionPool.urlopen
    if getattr(original, "_kolo_django", False):
        return

    @functools.wraps(original)
    def urlopen(
        self: Any, method: str, url: str, body: Any = None, headers: Any = None, **kwargs: Any
    ) -> Any:
        full = url if "://" in url else f"{self.scheme}://{self.host}:{self.port}{url}"
        with _outbound("urllib3", method, full, headers, body) as event:
            response = original(self, method, url, body, headers, **kwargs)
            if event is not None:
                preloaded = kwargs.get("preload_content", True)
                _response(
                    event,
                    current(),
                    response.status,
                    response.headers,
                    response.data if preloaded else None,
                )
            return response

    urlopen._kolo_django = True
    connectionpool.HTTPConnectionPool.urlopen = urlopen  # type: ignore[method-assign]


def install_urllib() -> None:
    import urllib.request
    import urllib.response

    original = urllib.request.OpenerDirector.open
    if getattr(original, "_kolo_django", False):
        return

    @functools.wraps(original)
    def open_(self: Any, fullurl: Any, data: Any = None, *args: Any, **kwargs: Any) -> Any:
        if isinstance(fullurl, str):
            method, url, headers = ("POST" if data is not None else "GET"), fullurl, {}
        else:
            method, url, headers = (
                fullurl.get_method(),
                fullurl.full_url,
                dict(fullurl.header_items()),
            )
            data = data if data is not None else fullurl.data
        with _outbound("urllib", method, url, headers, data) as event:
            response = original(self, fullurl, data, *args, **kwargs)
            if event is None:
                return response
            content = response.read()
            _response(event, current(), response.status, response.headers, content)
            # The body was consumed: hand the caller an equivalent response.
            replay = urllib.response.addinfourl(
                io.BytesIO(content), response.headers, response.url, response.status
            )
            replay.msg = getattr(response, "msg", "")
            return replay

    open_._kolo_django = True
    urllib.request.OpenerDirector.open = open_  # type: ignore[method-assign]


def install_all() -> None:
    for install in (install_requests, install_httpx, install_urllib3, install_urllib):
        try:
            install()
        except Exception:
            logger.exception("kolo_django could not hook %s", install.__name__)
