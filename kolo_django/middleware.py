"""``KoloMiddleware``: records each request into a stored Trace.

Put it first in MIDDLEWARE so sessions, authentication and CSRF are seen.
Every fault of the recorder is swallowed: the user's response is returned
exactly as the rest of the stack produced it, the recording of that request is
dropped (a trace that may miss events or secrets' redaction is not stored), and
the first fault of each kind is logged (later ones at DEBUG level).
"""

from __future__ import annotations

import datetime as dt
import platform
from collections.abc import Awaitable, Callable
from typing import Any

import django
from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.db import connections
from django.http import HttpRequest, HttpResponseBase

from . import __version__, storage, trace
from .conf import get_config, ignore_patterns, recording_enabled
from .recording import frames
from .recording.orm import run_backing_reads
from .recording.recorder import Recorder, activate, fault
from .recording.request import capture_request, capture_response


class KoloMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self.__acall__(request)
        recorder = self._start(request)
        if recorder is None:
            return self.get_response(request)
        with activate(recorder):
            token = self._start_calls(recorder)
            try:
                response = self.get_response(request)
            finally:
                self._stop_calls(recorder, token)
            document = self._finish(recorder, request, response)
        if document is not None:
            self._store(document, recorder.secrets)
        return response

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        get_response: Callable[[HttpRequest], Awaitable[HttpResponseBase]] = self.get_response  # type: ignore[assignment]
        recorder = self._start(request)
        if recorder is None:
            return await get_response(request)
        with activate(recorder):
            token = self._start_calls(recorder)
            try:
                response = await get_response(request)
            finally:
                self._stop_calls(recorder, token)
            document = await sync_to_async(self._finish)(recorder, request, response)
        if document is not None:
            await sync_to_async(self._store)(document, recorder.secrets)
        return response

    def _start(self, request: HttpRequest) -> Recorder | None:
        try:
            if not recording_enabled():
                return None
            path = request.path
            if any(pattern.search(path) for pattern in ignore_patterns()):
                return None
            recorder = Recorder(get_config())
            recorder.started_at = dt.datetime.now(dt.timezone.utc)  # type: ignore[attr-defined]
            return recorder
        except Exception:
            fault("start", None, "the start of a request")
            return None

    def _start_calls(self, recorder: Recorder) -> Any:
        if not recorder.config["CAPTURE_CALLS"]:
            return None
        try:
            return frames.start(recorder)
        except Exception:
            fault("calls", recorder, "calls (start)")
            recorder.calls = None
            return None

    def _stop_calls(self, recorder: Recorder, token: Any) -> None:
        if recorder.calls is None:
            return
        try:
            frames.stop(recorder, token)
        except Exception:
            fault("calls", recorder, "calls (stop)")
        # The tracker and the recorder refer to each other: without this the
        # recorder and its events wait for a full garbage collection, which
        # some later request pays for.
        recorder.calls = None

    def _finish(
        self, recorder: Recorder, request: HttpRequest, response: HttpResponseBase
    ) -> dict[str, Any] | None:
        """The finished document, redacted by key (the scrub for secret values
        runs when it is stored); None when the recording faulted."""
        if recorder.faults:
            return None
        try:
            duration = recorder.elapsed_ms()
            run_backing_reads(recorder)
        except Exception:
            fault("backing rows", recorder, "backing rows")
            return None
        try:
            with recorder.in_mode("silent"):
                request_section = capture_request(request, recorder)
                response_section = capture_response(response, recorder, recorder.templates)
            document: dict[str, Any] = {
                "schema_version": trace.SCHEMA_VERSION,
                "id": trace.new_trace_id(int(recorder.started_at.timestamp() * 1000)),  # type: ignore[attr-defined]
                "started_at": trace.encode_value(recorder.started_at),  # type: ignore[attr-defined]
                "duration_ms": duration,
                "request": request_section,
                "response": response_section,
                "exception": recorder.exception,
                "events": recorder.events,
                "dropped_events": recorder.dropped_events,
                "faults": sorted(set(recorder.faults)),
                "databases": {alias: connections[alias].vendor for alias in connections},
                "environment": {
                    "kolo_django": __version__,
                    "django": django.get_version(),
                    "python": platform.python_version(),
                },
            }
        except Exception:
            fault("document", recorder, "the trace document")
            return None
        # A fault while the request and response were captured.
        return None if recorder.faults else document

    def _store(self, document: dict[str, Any], secrets: set[str]) -> None:
        try:
            storage.store_recorded(document, secrets)
        except Exception:
            fault("storage", None, f"trace {document.get('id')} (storage)")
