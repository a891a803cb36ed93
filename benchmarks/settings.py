"""Settings for the benchmarks: the example project's, on a throwaway SQLite
file, with the benchmark views added to the URLconf.

Environment (set by ``benchmarks.__main__`` for itself and the server it
starts):

- ``KOLO_BENCH_DB``: path of the SQLite file (required).
- ``KOLO_BENCH_API_URL``: base URL of the local HTTP stub the heavy view calls.
- ``KOLO_BENCH_CONFIG``: the configuration a server process runs with
  (see ``benchmarks.configs``); the in-process benchmark swaps it with
  ``override_settings`` instead.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_DIR = REPO_ROOT / "example_project"
if str(EXAMPLE_DIR) not in sys.path:
    sys.path.insert(0, str(EXAMPLE_DIR))

os.environ.setdefault("DJANGO_DEBUG", "1")

from example.settings import *  # noqa: E402,F403
from example.settings import INSTALLED_APPS, MIDDLEWARE  # noqa: E402

from benchmarks.configs import CONFIGS, kolo_settings, middleware_for  # noqa: E402

DEBUG = True
ROOT_URLCONF = "benchmarks.urls"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("KOLO_BENCH_DB", str(REPO_ROOT / "build" / "bench.sqlite3")),
        # Concurrent server threads store traces: wait for the write lock.
        "OPTIONS": {"timeout": 30},
    }
}
KOLO_BENCH_API_URL = os.environ.get("KOLO_BENCH_API_URL", "http://127.0.0.1:8765")
ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]
# Kept out of the measured output; the console backend would print.
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "loggers": {"django.request": {"level": "ERROR"}},
}

BASE_MIDDLEWARE = [m for m in MIDDLEWARE if not m.startswith("kolo_django.")]
_config = os.environ.get("KOLO_BENCH_CONFIG", "off")
if _config not in CONFIGS:
    raise RuntimeError(f"KOLO_BENCH_CONFIG={_config!r}: expected one of {sorted(CONFIGS)}")
if _config == "absent":
    INSTALLED_APPS = [app for app in INSTALLED_APPS if app != "kolo_django"]
MIDDLEWARE = middleware_for(_config, BASE_MIDDLEWARE)
KOLO_DJANGO = kolo_settings(_config)
