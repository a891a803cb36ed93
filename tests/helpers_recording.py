"""Shared helpers for the recording tests."""

from __future__ import annotations

import contextlib
import copy
import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

from django.core import mail
from django.db import connection, transaction
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext

RECORDING_OFF = {"ENABLED": False}


def recording_settings(**extra: Any) -> dict[str, Any]:
    """KOLO_DJANGO for a test that records: tests/settings.py's, plus ``extra``."""
    return {"ENABLED": True, "RECORD_DURING_TESTS": True, "RETENTION_MAX_AGE_DAYS": None, **extra}


@contextlib.contextmanager
def extra_database(alias: str, config: dict[str, Any]) -> Iterator[str]:
    """A database alias that exists for the duration, connection closed after.

    DATABASES cannot be overridden once connections exist, so the connection is
    made directly (Django's test case allows such "dynamically created" ones).
    """
    from django.db import connections
    from django.db.utils import load_backend

    settings_dict = connections.configure_settings(
        {"default": dict(connections.settings["default"]), alias: dict(config)}
    )[alias]
    connections[alias] = load_backend(settings_dict["ENGINE"]).DatabaseWrapper(settings_dict, alias)
    try:
        yield alias
    finally:
        with contextlib.suppress(Exception):
            connections[alias].close()
        with contextlib.suppress(AttributeError):
            del connections[alias]


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


# --- a real server in a subprocess, on a database of its own -------------------------------

REPO_ROOT = Path(__file__).resolve().parent.parent
MANAGE = REPO_ROOT / "example_project" / "manage.py"

READ_TRACES = """
import json, sys
from kolo_django.models import Trace
json.dump([t.load_document() for t in Trace.objects.order_by("created_at", "id")], sys.stdout)
"""


@contextlib.contextmanager
def throwaway_database(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """DATABASES["default"] for a server: a SQLite file, or a new PostgreSQL
    database (dropped after) when KOLO_TEST_DB=postgres."""
    if os.environ.get("KOLO_TEST_DB") != "postgres":
        yield {"ENGINE": "django.db.backends.sqlite3", "NAME": str(tmp_path / "db.sqlite3")}
        return
    import psycopg

    name = f"kolo_server_{uuid.uuid4().hex[:12]}"
    dsn = "host=127.0.0.1 user=postgres dbname=postgres"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": name,
            "USER": "postgres",
            "HOST": "127.0.0.1",
            "PORT": "5432",
        }
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def server_env(tmp_path: Path, settings_source: str, **modules: str) -> dict[str, str]:
    """Environment for manage.py and servers: ``server_settings`` (the example
    settings plus ``settings_source``) and extra modules, all in ``tmp_path``."""
    (tmp_path / "server_settings.py").write_text(
        "from example.settings import *  # noqa\n" + settings_source
    )
    for name, source in modules.items():
        (tmp_path / f"{name}.py").write_text(source)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "KOLO_TEST"))}
    env.update(
        DJANGO_SETTINGS_MODULE="server_settings",
        PYTHONPATH=os.pathsep.join(
            [str(tmp_path), str(REPO_ROOT / "example_project"), str(REPO_ROOT)]
        ),
        PYTHONUNBUFFERED="1",
    )
    return env


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(MANAGE), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def stored_documents(env: dict[str, str]) -> list[dict[str, Any]]:
    """Every trace the server stored, oldest first, read by a separate process."""
    result = manage(env, "shell", "-v", "0", "-c", READ_TRACES)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


@contextlib.contextmanager
def serve(
    command: list[str], env: dict[str, str], log_path: Path, ready_url: str
) -> Iterator[None]:
    """Run a server until the block ends; waits until ``ready_url`` answers."""
    import requests

    log = open(log_path, "w")  # noqa: SIM115
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while True:
            assert process.poll() is None, log_path.read_text()[-3000:]
            try:
                requests.get(ready_url, timeout=1)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.1)
        yield
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
