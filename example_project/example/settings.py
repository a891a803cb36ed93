"""Settings for the kolo_django example project.

Environment switches:

- ``DJANGO_DEBUG``: "0"/"false" turns DEBUG off (default on).
- ``EXAMPLE_WITHOUT_KOLO=1``: run without kolo_django (app and middleware).
- ``EXAMPLE_DB=postgres``: use PostgreSQL instead of the SQLite file
  (database name from ``EXAMPLE_PG_NAME``, default "kolo_example").
- ``EXAMPLE_API_URL``: base URL of the outbound API (see ``stub_api.py``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
REPO_ROOT = BASE_DIR.parent

# Make the in-repo kolo_django package importable without installing it.
if str(REPO_ROOT) not in sys.path:
    sys.path.append(str(REPO_ROOT))


def _env_flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


DEBUG = _env_flag("DJANGO_DEBUG", True)
WITH_KOLO = not _env_flag("EXAMPLE_WITHOUT_KOLO", False)

SECRET_KEY = "django-insecure-example-project-dev-key-not-for-production"

ALLOWED_HOSTS = os.environ.get(
    "DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver"
).split(",")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "todos",
    "catalog",
]
if WITH_KOLO:
    INSTALLED_APPS.append("kolo_django")

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
if WITH_KOLO:
    # First, so it sees the request before and the response after everything else.
    MIDDLEWARE.insert(0, "kolo_django.middleware.KoloMiddleware")

KOLO_DJANGO: dict = {}

ROOT_URLCONF = "example.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "example.wsgi.application"
ASGI_APPLICATION = "example.asgi.application"

if os.environ.get("EXAMPLE_DB") == "postgres":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": os.environ.get("EXAMPLE_PG_NAME", "kolo_example"),
            "USER": "postgres",
            "HOST": "127.0.0.1",
            "PORT": "5432",
        }
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": BASE_DIR / "db.sqlite3",
        }
    }

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
MEDIA_URL = "media/"
MEDIA_ROOT = BASE_DIR / "media"

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "todo-list"

EMAIL_BACKEND = os.environ.get(
    "DJANGO_EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend"
)
DEFAULT_FROM_EMAIL = "todos@example.com"

EXAMPLE_API_URL = os.environ.get("EXAMPLE_API_URL", "http://127.0.0.1:8765")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
