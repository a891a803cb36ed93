"""Request and response sections of the document, read after the view ran
(so the body is read the way the view read it, never before)."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from django.http import HttpRequest, HttpResponseBase
from django.http.request import RawPostDataException

from ..trace import encode_value
from .recorder import Recorder
from .redact import REDACTED, is_secret_key, redact_mapping

SKIP_HEADERS = {"content-length"}


def capture_request(request: HttpRequest, recorder: Recorder) -> dict[str, Any]:
    config = recorder.config
    secrets = recorder.secrets
    for value in request.COOKIES.values():
        if len(value) >= 6:
            secrets.add(value)
    headers = {k: v for k, v in request.headers.items() if k.lower() not in SKIP_HEADERS}
    section: dict[str, Any] = {
        "method": request.method,
        "scheme": request.scheme,
        "host": request.META.get("HTTP_HOST") or request.META.get("SERVER_NAME", ""),
        "path": request.path,
        "path_info": request.path_info,
        "query_string": request.META.get("QUERY_STRING", ""),
        "query": {k: request.GET.getlist(k) for k in request.GET},
        "headers": redact_mapping(headers, secrets),
        "content_type": request.content_type or "",
        "auth": _auth(request, secrets),
        "body": _body(request, config, secrets),
        "user": _user(request),
        "session": recorder.session_before,
        "resolver": _resolver(request),
    }
    return section


def _auth(request: HttpRequest, secrets: set[str]) -> dict[str, Any] | None:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if not header:
        return None
    scheme, _, credentials = header.partition(" ")
    if len(credentials.strip()) >= 4:
        secrets.add(credentials.strip())
    info: dict[str, Any] = {"scheme": scheme.lower()}
    if scheme.lower() == "basic":
        try:
            username, _, password = (
                base64.b64decode(credentials.strip()).decode("utf-8").partition(":")
            )
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return info
        info["username"] = username
        # Shorter values would scrub ordinary letters from the whole document;
        # the header that carried them is redacted anyway.
        if len(password) >= 4:
            secrets.add(password)
    return info


def _sensitive(request: HttpRequest) -> Any:
    return getattr(request, "sensitive_post_parameters", None)


def _form(query_dict: Any, request: HttpRequest, secrets: set[str]) -> dict[str, list[str]]:
    sensitive = _sensitive(request)
    form: dict[str, list[str]] = {}
    for key in query_dict:
        values = query_dict.getlist(key)
        named = bool(sensitive) and sensitive != "__ALL__" and key in sensitive
        if named or is_secret_key(key):
            for value in values:
                if isinstance(value, str) and len(value) >= 4:
                    secrets.add(value)
            form[key] = [REDACTED] * len(values)
        elif sensitive == "__ALL__":
            # Like Django's error reports: hidden in the request body, but a
            # username is not scrubbed from every row it appears in.
            form[key] = [REDACTED] * len(values)
        else:
            form[key] = values
    return form


def _body(request: HttpRequest, config: dict[str, Any], secrets: set[str]) -> dict[str, Any]:
    content_type = (request.content_type or "").lower()
    cap = int(config["MAX_BODY_BYTES"])
    if content_type == "multipart/form-data":
        try:
            post, files = request.POST, request.FILES
        except Exception as exc:
            return {"kind": "unreadable", "error": f"{type(exc).__name__}: {exc}"}
        return {
            "kind": "multipart",
            "form": _form(post, request, secrets),
            "files": [_file(field, f, config) for field in files for f in files.getlist(field)],
        }
    if content_type == "application/x-www-form-urlencoded":
        try:
            return {"kind": "form", "form": _form(request.POST, request, secrets)}
        except Exception as exc:
            return {"kind": "unreadable", "error": f"{type(exc).__name__}: {exc}"}
    try:
        raw = request.body
    except RawPostDataException:
        return {"kind": "unreadable", "error": "the view read the request stream directly"}
    except Exception as exc:  # RequestDataTooBig and the like: still a trace, without the body
        return {"kind": "unreadable", "error": f"{type(exc).__name__}: {exc}"}
    if not raw:
        return {"kind": "empty"}
    size = len(raw)
    if "json" in content_type:
        try:
            data = json.loads(raw)
        except ValueError:
            pass
        else:
            if isinstance(data, dict):
                data = redact_mapping(data, secrets)
            if size <= cap:
                return {"kind": "json", "json": data, "size": size}
    body: dict[str, Any] = {"kind": "raw", "size": size}
    chunk = raw[:cap]
    try:
        body["text"] = chunk.decode(request.encoding or "utf-8")
    except UnicodeDecodeError:
        body["base64"] = base64.b64encode(chunk).decode("ascii")
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


def _resolver(request: HttpRequest) -> dict[str, Any] | None:
    match = getattr(request, "resolver_match", None)
    if match is None:
        return None
    return {
        "route": match.route,
        "url_name": match.url_name,
        "namespaces": list(match.namespaces),
        "view_name": match.view_name,
        "view": match._func_path,
        "args": [encode_value(a) for a in match.args],
        "kwargs": {k: encode_value(v) for k, v in match.kwargs.items()},
    }


def capture_response(
    response: HttpResponseBase, recorder: Recorder, templates: list[str]
) -> dict[str, Any]:
    config = recorder.config
    secrets = recorder.secrets
    for morsel in response.cookies.values():
        if len(morsel.value) >= 6:
            secrets.add(morsel.value)
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
        content = bytes(getattr(response, "content", b""))
        cap = int(config["MAX_RESPONSE_BYTES"])
        section["size"] = len(content)
        charset = getattr(response, "charset", None) or "utf-8"
        try:
            section["content"] = content[:cap].decode(charset)
        except UnicodeDecodeError:
            section["content_base64"] = base64.b64encode(content[:cap]).decode("ascii")
        if len(content) > cap:
            section["content_truncated"] = True
        if "json" in content_type.lower():
            try:
                data = json.loads(content)
            except ValueError:
                pass
            else:
                section["json"] = redact_mapping(data, secrets) if isinstance(data, dict) else data
    return section


def _template_context(recorder: Recorder) -> dict[str, Any] | None:
    if recorder.template_context_source is None:
        return None
    from .template_context import summarise

    return summarise(recorder.template_context_source)
