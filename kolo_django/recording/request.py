"""Request and response sections of the document, read after the view ran
(so the body is read the way the view read it, never before)."""

from __future__ import annotations

import base64
import json
from typing import Any

from django.http import HttpRequest, HttpResponseBase
from django.http.request import RawPostDataException

from ..trace import encode_value
from .recorder import Recorder
from .redact import (
    COOKIE_SECRET_MIN,
    REDACTED,
    collect,
    collect_credentials,
    is_secret_key,
    redact_all,
    redact_data,
    redact_mapping,
    redact_text,
)

SKIP_HEADERS = {"content-length"}


def capture_request(request: HttpRequest, recorder: Recorder) -> dict[str, Any]:
    config = recorder.config
    secrets = recorder.secrets
    for value in request.COOKIES.values():
        collect(value, secrets, COOKIE_SECRET_MIN)
    # The CSRF secret, also when this request made it or it came in a header.
    collect(request.META.get("CSRF_COOKIE"), secrets)
    headers = {k: v for k, v in request.headers.items() if k.lower() not in SKIP_HEADERS}
    section: dict[str, Any] = {
        "method": request.method,
        "scheme": request.scheme,
        "host": request.META.get("HTTP_HOST") or request.META.get("SERVER_NAME", ""),
        "path": request.path,
        "path_info": request.path_info,
        "query_string": redact_text(request.META.get("QUERY_STRING", ""), secrets),
        "query": _form(request.GET, request, secrets, config, post=False)[0],
        "headers": redact_mapping(headers, secrets),
        "content_type": request.content_type or "",
        "auth": _auth(request, secrets),
        "body": _body(request, config, secrets),
        "user": _user(request),
        "session": recorder.session_before,
        "resolver": _resolver(request, secrets),
    }
    return section


def _auth(request: HttpRequest, secrets: set[str]) -> dict[str, Any] | None:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if not header:
        return None
    # Credentials are remembered for the scrub pass, never kept.
    return collect_credentials(header, secrets)


def _sensitive(request: HttpRequest) -> Any:
    """Names from ``@sensitive_post_parameters``, ``"__ALL__"``, or None."""
    return getattr(request, "sensitive_post_parameters", None)


def _form(
    query_dict: Any,
    request: HttpRequest,
    secrets: set[str],
    config: dict[str, Any],
    *,
    post: bool = True,
) -> tuple[dict[str, list[str]], bool]:
    """Fields to lists of values, redacted; and whether a value was cut."""
    sensitive = _sensitive(request)
    if not post and sensitive == "__ALL__":
        # Django's filter covers POST only; named parameters are hidden in the
        # query string too, since the view said that name carries a secret.
        sensitive = None
    cap = int(config["MAX_BODY_BYTES"])
    form: dict[str, list[str]] = {}
    truncated = False
    for key in query_dict:
        values = query_dict.getlist(key)
        named = bool(sensitive) and sensitive != "__ALL__" and key in sensitive
        if named or is_secret_key(key):
            for value in values:
                collect(value, secrets)
            form[key] = [REDACTED] * len(values)
        elif sensitive == "__ALL__":
            # Like Django's error reports: hidden in the request body, but a
            # username is not scrubbed from every row it appears in.
            form[key] = [REDACTED] * len(values)
        else:
            kept = []
            for value in values:
                if isinstance(value, str) and len(value) > cap:
                    value, truncated = value[:cap], True
                kept.append(value)
            form[key] = kept
    return form, truncated


def _form_body(kind: str, form: tuple[dict[str, list[str]], bool]) -> dict[str, Any]:
    body: dict[str, Any] = {"kind": kind, "form": form[0]}
    if form[1]:
        body["truncated"] = True
    return body


def _raw_body(request: HttpRequest, cap: int) -> tuple[bytes, int]:
    """At most ``cap`` + 1 bytes of the body, and its size. A large body the
    view did not read is never read whole."""
    if hasattr(request, "_body"):
        raw = request._body
        return raw[: cap + 1], len(raw)
    if getattr(request, "_read_started", False):
        raise RawPostDataException("the view read the request stream directly")
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length <= cap:
        raw = request.body
        return raw, len(raw)
    # The response is made: nothing else reads the stream after us.
    return request.read(cap + 1), length


def _body(request: HttpRequest, config: dict[str, Any], secrets: set[str]) -> dict[str, Any]:
    content_type = (request.content_type or "").lower()
    cap = int(config["MAX_BODY_BYTES"])
    if content_type == "multipart/form-data":
        try:
            post, files = request.POST, request.FILES
        except Exception as exc:
            return {"kind": "unreadable", "error": f"{type(exc).__name__}: {exc}"}
        body = _form_body("multipart", _form(post, request, secrets, config))
        body["files"] = [_file(field, f, config) for field in files for f in files.getlist(field)]
        return body
    if content_type == "application/x-www-form-urlencoded":
        try:
            return _form_body("form", _form(request.POST, request, secrets, config))
        except Exception as exc:
            return {"kind": "unreadable", "error": f"{type(exc).__name__}: {exc}"}
    try:
        raw, size = _raw_body(request, cap)
    except RawPostDataException:
        return {"kind": "unreadable", "error": "the view read the request stream directly"}
    except Exception as exc:  # RequestDataTooBig and the like: still a trace, without the body
        return {"kind": "unreadable", "error": f"{type(exc).__name__}: {exc}"}
    if not raw:
        return {"kind": "empty"}
    sensitive = _sensitive(request)
    if "json" in content_type and size <= cap:
        try:
            data = json.loads(raw)
        except ValueError:
            pass
        else:
            if sensitive == "__ALL__":
                data = redact_all(data)
            else:
                data = redact_data(data, secrets, sensitive or ())
            return {"kind": "json", "json": data, "size": size}
    body: dict[str, Any] = {"kind": "raw", "size": size}
    chunk = raw[:cap]
    try:
        text = chunk.decode(request.encoding or "utf-8")
    except UnicodeDecodeError:
        body["base64"] = base64.b64encode(chunk).decode("ascii")
    else:
        body["text"] = REDACTED if sensitive == "__ALL__" else redact_text(text, secrets)
    if size > cap:
        body["truncated"] = True
    return body


def _file(field: str, upload: Any, config: dict[str, Any]) -> dict[str, Any]:
    cap = int(config["MAX_FILE_BYTES"])
    info: dict[str, Any] = {
        "field": field,
        "name": upload.name,
        "content_type": upload.content_type,
        "size": upload.size,
    }
    try:
        # Only the first MAX_FILE_BYTES: a large upload stays on disk where
        # Django's upload handler put it.
        upload.seek(0)
        content = upload.read(cap)
        upload.seek(0)
        info["base64"] = base64.b64encode(content).decode("ascii")
        info["truncated"] = upload.size > cap
    except Exception as exc:
        info["error"] = f"{type(exc).__name__}: {exc}"
    return info


def _user(request: HttpRequest) -> dict[str, Any] | None:
    user = getattr(request, "user", None)
    if user is None:
        return None
    wrapped = getattr(user, "_wrapped", user)
    from django.utils.functional import empty

    if wrapped is empty:
        # The view never looked at the user; evaluate it with nothing recorded
        # so the test still logs in the same person.
        try:
            _ = user.is_authenticated
            wrapped = user._wrapped
        except Exception:
            return None
    if not getattr(wrapped, "is_authenticated", False):
        return {"authenticated": False}
    meta = wrapped._meta
    return {
        "authenticated": True,
        "model": meta.label_lower,
        "pk": encode_value(wrapped.pk),
        "username": wrapped.get_username(),
        "backend": getattr(wrapped, "backend", None),
    }


def _resolver(request: HttpRequest, secrets: set[str]) -> dict[str, Any] | None:
    match = getattr(request, "resolver_match", None)
    if match is None:
        return None
    kwargs = {k: encode_value(v) for k, v in match.kwargs.items()}
    return {
        "route": match.route,
        "url_name": match.url_name,
        "namespaces": list(match.namespaces),
        "view_name": match.view_name,
        "view": match._func_path,
        "args": [encode_value(a) for a in match.args],
        # A token in the URL (password reset links) is hidden here and
        # scrubbed from the path by the final pass.
        "kwargs": redact_mapping(kwargs, secrets),
    }


def capture_response(
    response: HttpResponseBase, recorder: Recorder, templates: list[str]
) -> dict[str, Any]:
    config = recorder.config
    secrets = recorder.secrets
    for morsel in response.cookies.values():
        collect(morsel.value, secrets, COOKIE_SECRET_MIN)
    headers = redact_mapping(dict(response.items()), secrets)
    content_type = response.get("Content-Type", "")
    section: dict[str, Any] = {
        "status_code": response.status_code,
        "reason": response.reason_phrase,
        "headers": headers,
        "content_type": content_type,
        "cookies": sorted(response.cookies.keys()),
        "templates": templates,
        "context": _template_context(recorder),
        "redirect": response.get("Location") if 300 <= response.status_code < 400 else None,
        "streaming": bool(getattr(response, "streaming", False)),
    }
    if not section["streaming"]:
        content = getattr(response, "content", b"")
        cap = int(config["MAX_RESPONSE_BYTES"])
        section["size"] = len(content)
        is_json = "json" in content_type.lower()
        # Parsed only when it fits: a huge JSON response would cost many times
        # its size in memory, and the document would carry all of it.
        if is_json and len(content) <= cap:
            try:
                data = json.loads(content)
            except ValueError:
                pass
            else:
                section["json"] = redact_data(data, secrets)
        chunk = bytes(content[:cap])
        charset = getattr(response, "charset", None) or "utf-8"
        try:
            text = chunk.decode(charset)
        except UnicodeDecodeError:
            section["content_base64"] = base64.b64encode(chunk).decode("ascii")
        else:
            section["content"] = redact_text(text, secrets, form=False, html=not is_json)
        if len(content) > cap:
            section["content_truncated"] = True
    return section


def _template_context(recorder: Recorder) -> dict[str, Any] | None:
    if recorder.template_context_source is None:
        return None
    from .template_context import summarise

    return summarise(recorder.template_context_source)
