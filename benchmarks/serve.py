"""A threaded WSGI server for section 2: Django's runserver server class
without its per-request log line. Run by ``benchmarks.server`` as
``python -m benchmarks.serve`` with ``KOLO_BENCH_*`` in the environment; it
prints ``READY <port>`` once listening and, on SIGINT or SIGTERM, the number
of traces kolo_django stored (``SAVES <n>``)."""

from __future__ import annotations

import os
import signal
import sys
from typing import Any


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.settings")
    import django

    django.setup()
    from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler
    from django.core.wsgi import get_wsgi_application

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    application = get_wsgi_application()
    server = ThreadedWSGIServer(("127.0.0.1", 0), QuietHandler)
    server.daemon_threads = True
    server.set_app(application)

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    print(f"READY {server.server_address[1]}", flush=True)
    try:
        server.serve_forever(poll_interval=0.05)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        saves = -1
        if "kolo_django" in sys.modules:
            from kolo_django import storage

            storage.flush(timeout=60)
            saves = storage.saves()
        if "kolo.core" in sys.modules:
            from kolo.core import wait_for_pending_saves

            wait_for_pending_saves(timeout=60)
        print(f"SAVES {saves}", flush=True)


if __name__ == "__main__":
    main()
