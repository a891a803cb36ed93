"""Redaction of secrets before a document is stored.

Two passes: values under secret-looking keys (form fields, JSON keys, headers,
columns, locals) are replaced as they are captured; then every string in the
finished document is scanned for the secret values seen during the request
(cookies, the session key, CSRF tokens, posted passwords, SECRET_KEY) and for
password hashes, wherever they ended up (SQL params, rows, locals, mail...).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from django.conf import settings

REDACTED = "[REDACTED]"

BUILTIN_KEY_PATTERNS = (
    r"pass(word|wd|phrase)?($|[^a-z])",
    r"^pwd$",
    r"secret",
    r"token",
    r"api[-_]?key",
    r"authori[sz]ation",
    r"cookie",
    r"csrf",
    r"session[-_]?(key|id|data)",
    r"^sessionid$",
    r"private[-_]?key",
    r"signature",
    r"_auth_user_hash",
    r"credit[-_]?card|card[-_]?number|\bcvv\b|\bssn\b",
)

PASSWORD_HASH_RE = re.compile(
    r"^(pbkdf2_sha256|pbkdf2_sha1|argon2|bcrypt_sha256|bcrypt|scrypt|sha1|md5|unsalted_sha1|unsalted_md5|crypt)\$"
)


@lru_cache(maxsize=1)
def _key_regex() -> re.Pattern[str]:
    from ..conf import get_config

    patterns = list(BUILTIN_KEY_PATTERNS) + list(get_config()["REDACT_KEYS"])
    return re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)


def reset_cache() -> None:
    _key_regex.cache_clear()


def is_secret_key(key: str) -> bool:
    return bool(_key_regex().search(key))


def redact_mapping(data: dict[str, Any], secrets: set[str]) -> dict[str, Any]:
    """A copy with secret keys' values replaced; the values go into ``secrets``."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if is_secret_key(str(key)):
            _collect(value, secrets)
            out[key] = REDACTED
        elif isinstance(value, dict):
            out[key] = redact_mapping(value, secrets)
        elif isinstance(value, list):
            out[key] = [redact_mapping(v, secrets) if isinstance(v, dict) else v for v in value]
        else:
            out[key] = value
    return out


def _collect(value: Any, secrets: set[str]) -> None:
    if isinstance(value, str):
        if len(value) >= 4:
            secrets.add(value)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _collect(item, secrets)
    elif isinstance(value, dict):
        for item in value.values():
            _collect(item, secrets)


def scrub(document: Any, secrets: set[str]) -> Any:
    """Replace every occurrence of a known secret, and every password hash."""
    secret_key = getattr(settings, "SECRET_KEY", "")
    needles = sorted(
        {s for s in secrets if s} | ({secret_key} if secret_key else set()), key=len, reverse=True
    )
    pattern = re.compile("|".join(re.escape(n) for n in needles)) if needles else None
    return _scrub(document, pattern)


def _scrub(value: Any, pattern: re.Pattern[str] | None) -> Any:
    if isinstance(value, str):
        if PASSWORD_HASH_RE.match(value):
            return REDACTED
        if pattern is not None and pattern.search(value):
            return pattern.sub(REDACTED, value)
        return value
    if isinstance(value, list):
        return [_scrub(v, pattern) for v in value]
    if isinstance(value, dict):
        return {k: _scrub(v, pattern) for k, v in value.items()}
    return value
