"""A tiny local stand-in for the third-party API the example views call.

Usage: python stub_api.py [--port 8765]

It listens on 127.0.0.1 only and never touches the network beyond that.
"""

from __future__ import annotations

import argparse
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

QUOTE = {
    "text": "Simple things should be simple, complex things should be possible.",
    "author": "Alan Kay",
}


class StubHandler(BaseHTTPRequestHandler):
    server_version = "ExampleStub/1.0"

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/weather":
            city = parse_qs(url.query).get("city", ["Paris"])[0]
            self._send_json(200, {"city": city, "temperature_c": 18.5})
        elif url.path == "/quote":
            self._send_json(200, QUOTE)
        else:
            self._send_json(404, {"error": "not found"})

    def do_POST(self) -> None:
        if urlsplit(self.path).path != "/echo":
            self._send_json(404, {"error": "not found"})
            return
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"null")
        except json.JSONDecodeError:
            self._send_json(400, {"error": "body must be JSON"})
            return
        self._send_json(200, body)

    def _send_json(self, status: int, payload: Any) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), StubHandler)
    server.daemon_threads = True
    print(f"stub API listening on http://127.0.0.1:{args.port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
