"""Settings for kolo_django's own test suite: the example project, recording on."""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT / "example_project"))

from example.settings import *  # noqa: E402,F403
from example.settings import BASE_DIR  # noqa: E402

DEBUG = False
KOLO_DJANGO = {"ENABLED": True, "RECORD_DURING_TESTS": True, "RETENTION_MAX_AGE_DAYS": None}
SILENCED_SYSTEM_CHECKS = ["kolo_django.W001"]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
MEDIA_ROOT = str(REPO_ROOT / "artifacts" / "test-media")
EXAMPLE_API_URL = "http://api.example.test"

if os.environ.get("KOLO_TEST_DB") == "postgres":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": os.environ.get("KOLO_TEST_PG_NAME", "kolo_django"),
            "USER": os.environ.get("KOLO_TEST_PG_USER", "postgres"),
            "HOST": "127.0.0.1",
            "PORT": "5432",
            "TEST": {"NAME": os.environ.get("KOLO_TEST_PG_NAME", "test_kolo_django")},
        }
    }
elif os.environ.get("KOLO_TEST_DB") == "mariadb":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.mysql",
            "NAME": "kolo_django",
            "USER": "root",
            "HOST": "127.0.0.1",
            "PORT": "3306",
            "OPTIONS": {"charset": "utf8mb4"},
            "TEST": {
                "NAME": "test_kolo_django",
                "CHARSET": "utf8mb4",
                "COLLATION": "utf8mb4_unicode_ci",
            },
        }
    }
else:
    DATABASES = {
        "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(BASE_DIR / "test.sqlite3")}
    }
