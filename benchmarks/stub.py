"""A local stand-in for the third-party API the heavy view calls: a
``ThreadingHTTPServer`` on 127.0.0.1, in a daemon thread of the benchmark."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FORECAST = json.dumps(
    {"city": "Paris", "temperature_c": 18.5, "rain": False, "hours": list(range(12))}
).encode()


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(FORECAST)))
        self.end_headers()
        self.wfile.write(FORECAST)

    def log_message(self, format: str, *args: object) -> None:
        pass


class StubServer:
    def __init__(self) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, name="bench-stub-api", daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> StubServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
