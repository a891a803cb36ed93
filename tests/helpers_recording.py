"""Shared helpers for the recording tests."""

from __future__ import annotations

import contextlib
import copy
import json
import socket
import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from typing import Any

from django.core import mail
from django.db import connection, transaction
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext

RECORDING_OFF = {"ENABLED": False}


def documents(traces: Any) -> list[dict[str, Any]]:
    """Every stored document, oldest first."""
    return [t.load_document() for t in traces.order_by("created_at", "id")]


def only_trace(traces: Any) -> tuple[Any, dict[str, Any]]:
    """The single stored trace and its document; fails if there is not exactly one."""
    stored = list(traces.all())
    assert len(stored) == 1, [str(t) for t in stored]
    return stored[0], stored[0].load_document()


def events(document: dict[str, Any], kind: str, **match: Any) -> list[dict[str, Any]]:
    return [
        e
        for e in document["events"]
        if e["type"] == kind and all(e.get(k) == v for k, v in match.items())
    ]


def document_text(obj: Any) -> str:
    """The stored JSON text of a trace, as anything reading the database would see it."""
    return json.dumps(obj.load_document(), ensure_ascii=False)


class _Rollback(Exception):
    pass


def baseline_query_count(client: Client, method: str, path: str, **kwargs: Any) -> int:
    """How many queries Django itself runs for this request with recording off.

    Runs on a copy of the client's cookies inside a transaction that is rolled
    back, so the recorded request that follows sees the same database and session.
    """
    baseline = Client(raise_request_exception=False)
    baseline.cookies = copy.deepcopy(client.cookies)
    outbox = list(getattr(mail, "outbox", []))
    with contextlib.suppress(_Rollback), override_settings(KOLO_DJANGO=RECORDING_OFF):
        with transaction.atomic(), CaptureQueriesContext(connection) as captured:
            getattr(baseline, method.lower())(path, **kwargs)
            raise _Rollback
    mail.outbox[:] = outbox
    return len(captured.captured_queries)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def stub_api() -> Iterator[str]:
    """The example project's stub API on a free local port; yields its base URL."""
    from stub_api import StubHandler  # example_project/ is on sys.path (tests/settings.py)

    class QuietHandler(StubHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), QuietHandler)
    server.daemon_threads = True
    # A short poll interval: shutdown() waits for it.
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
