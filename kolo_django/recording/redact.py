"""Redaction of secrets before a document is stored.

Two passes: values under secret-looking keys (form fields, JSON keys, headers,
query parameters, columns, locals) are replaced as they are captured, and the
values replaced are remembered; then every string in the finished document is
scanned for the secret values seen during the request (cookies, the session
key, CSRF tokens, credentials, posted passwords, secret columns, SECRET_KEY)
and for password hashes, wherever they ended up (SQL params, rows, locals,
mail, logs, response content, base64 file contents...).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import re
from functools import cached_property, lru_cache
from typing import Any
from urllib.parse import quote, quote_plus, unquote_plus

from django.conf import settings

REDACTED = "[REDACTED]"
# Shorter values would scrub ordinary words from the whole document.
MIN_SECRET = 4
COOKIE_SECRET_MIN = 6
# Values of secret-looking columns read from the database: longer, so a short
# value under a column that only looks secret ("token_kind") stays harmless.
DB_SECRET_MIN = 8

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

_HASHERS = (
    "pbkdf2_sha256|pbkdf2_sha1|argon2|bcrypt_sha256|bcrypt|scrypt|"
    "unsalted_sha1|unsalted_md5|sha1|md5|crypt"
)
# A Django password hash, whole string (a column value)...
PASSWORD_HASH_RE = re.compile(rf"^(?:{_HASHERS})\$")
# ...or inside a longer string (a repr, a log message, raw SQL).
PASSWORD_HASH_IN_TEXT_RE = re.compile(rf"(?<![A-Za-z0-9_])(?:{_HASHERS})\$[^\s'\"<>,;&)\]}}]+")

_COOKIE_KEY_RE = re.compile(r"cookie", re.IGNORECASE)
_AUTH_KEY_RE = re.compile(r"authori[sz]ation", re.IGNORECASE)

# "key": value pairs in JSON-looking text. Strings are matched as "unrolled
# loops": an alternation repeated per character would make the regex engine
# keep state for every character (20 MB for a 100 KB string).
_JSON_STRING = r'"[^"\\]*(?:\\.[^"\\]*)*"'
_JSON_PAIR_RE = re.compile(rf"(?P<key>{_JSON_STRING})\s*:\s*(?P<value>{_JSON_STRING}|[^\s,}}\]]+)")
_QUOTE_COLON_RE = re.compile(r'"\s*:')
# key=value pairs in URL-encoded text (query strings, form bodies). The
# delimiter before the key is matched rather than looked behind for: the engine
# then skips from one delimiter to the next instead of trying every position
# (a third less time on an HTML page).
_FORM_PAIR_RE = re.compile(r"(?P<delim>[&?;\s])(?P<key>[^=&?;\s]{1,200})=(?P<value>[^&;\s]*)")
# The same pairs up to their "=": the keys, and also keys inside values.
_FORM_KEY_RE = re.compile(r"[&?;\s]([^=&?;\s]{1,200})=")
_HTML_INPUT_RE = re.compile(r"<input\b[^>]*>", re.IGNORECASE)
_HTML_ATTR_RE = re.compile(
    r"""(?P<name>[a-zA-Z_:][-a-zA-Z0-9_:.]*)\s*=\s*(?P<value>"[^"]*"|'[^']*'|[^\s"'=<>`]+)"""
)


@lru_cache(maxsize=1)
def _key_regex() -> re.Pattern[str]:
    from ..conf import get_config

    patterns = list(BUILTIN_KEY_PATTERNS) + list(get_config()["REDACT_KEYS"])
    return re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)


def reset_cache() -> None:
    _key_regex.cache_clear()
    is_secret_key.cache_clear()


@lru_cache(maxsize=4096)
def is_secret_key(key: str) -> bool:
    # Asked for every column of every row and every local: names repeat.
    return bool(_key_regex().search(key))


# --- remembering secret values -------------------------------------------------------


def collect(value: Any, secrets: set[str], minimum: int = MIN_SECRET) -> None:
    """Remember a secret value (and the values inside it) for the scrub pass."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        try:
            value = bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return
    if isinstance(value, str):
        if len(value) >= minimum:
            secrets.add(value)
            # "Bearer abc", "Token abc": the credential alone may travel elsewhere.
            scheme, _, credentials = value.partition(" ")
            if credentials and scheme.isalpha() and len(scheme) <= 20:
                collect_credentials(value, secrets)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            collect(item, secrets, minimum)
    elif isinstance(value, dict):
        for item in value.values():
            collect(item, secrets, minimum)


def collect_credentials(header: str, secrets: set[str]) -> dict[str, Any]:
    """Remember the credentials of an ``Authorization`` value; returns what may
    be kept of it: the scheme, and the username of Basic auth."""
    scheme, _, credentials = header.strip().partition(" ")
    credentials = credentials.strip()
    if len(credentials) >= MIN_SECRET:
        secrets.add(credentials)
    info: dict[str, Any] = {"scheme": scheme.lower()}
    if scheme.lower() == "basic" and credentials:
        try:
            decoded = base64.b64decode(credentials).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return info
        username, _, password = decoded.partition(":")
        info["username"] = username
        if len(password) >= MIN_SECRET:
            secrets.add(password)
    return info


def collect_cookies(header: str, secrets: set[str]) -> None:
    """Remember the values of a ``Cookie`` or ``Set-Cookie`` header."""
    for part in re.split(r"[;,]", header):
        _name, sep, value = part.strip().partition("=")
        if sep and len(value.strip('"')) >= COOKIE_SECRET_MIN:
            secrets.add(value.strip('"'))


# --- redaction by key ----------------------------------------------------------------


def _redact_value(key: str, value: Any, secrets: set[str]) -> str:
    if isinstance(value, str):
        if _COOKIE_KEY_RE.search(key):
            collect_cookies(value, secrets)
        if _AUTH_KEY_RE.search(key):
            collect_credentials(value, secrets)
    collect(value, secrets)
    return REDACTED


def redact_mapping(data: dict[str, Any], secrets: set[str], extra_keys: Any = ()) -> dict[str, Any]:
    """A copy with secret keys' values replaced; the values go into ``secrets``.

    ``extra_keys``: more key names to treat as secret (``sensitive_post_parameters``).
    """
    out: dict[str, Any] = {}
    for key, value in data.items():
        if is_secret_key(str(key)) or key in extra_keys:
            out[key] = _redact_value(str(key), value, secrets)
        else:
            out[key] = redact_data(value, secrets, extra_keys)
    return out


def redact_data(value: Any, secrets: set[str], extra_keys: Any = ()) -> Any:
    """Like :func:`redact_mapping` for any JSON value (lists of objects too)."""
    if isinstance(value, dict):
        return redact_mapping(value, secrets, extra_keys)
    if isinstance(value, list):
        return [redact_data(item, secrets, extra_keys) for item in value]
    return value


def redact_all(value: Any) -> Any:
    """Every leaf replaced (``sensitive_post_parameters()`` without names)."""
    if isinstance(value, dict):
        return {k: redact_all(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_all(v) for v in value]
    return REDACTED


def _secret_form_key(raw_key: str) -> bool:
    return is_secret_key(unquote_plus(raw_key) if "%" in raw_key or "+" in raw_key else raw_key)


def redact_text(text: str, secrets: set[str], *, form: bool = True, html: bool = False) -> str:
    """Secret-keyed values inside text: ``"key": value`` (JSON), ``key=value``
    (URL-encoded, when ``form``) and ``<input name=... value=...>`` (when ``html``)."""
    if not text:
        return text

    def json_pair(match: re.Match[str]) -> str:
        key = match.group("key")[1:-1]
        if len(key) > 200 or not is_secret_key(key):
            return match.group(0)
        value = match.group("value")
        if value.startswith('"'):
            collect(value[1:-1], secrets)
            with contextlib.suppress(ValueError):
                collect(json.loads(value), secrets)  # unescaped, as it appears elsewhere
        else:
            collect(value, secrets)
        start, end = match.span("value")
        offset = match.start()
        whole = match.group(0)
        return whole[: start - offset] + f'"{REDACTED}"' + whole[end - offset :]

    # A JSON pair needs a quote then a colon: most HTML has none, and the pair
    # regex would try every quoted attribute of the page.
    if '"' in text and _QUOTE_COLON_RE.search(text):
        text = _JSON_PAIR_RE.sub(json_pair, text)

    if form and "=" in text:

        def form_pair(match: re.Match[str]) -> str:
            raw_key = match.group("key")
            value = match.group("value")
            if not _secret_form_key(raw_key) or not value or value == quote_plus(REDACTED):
                return match.group(0)
            collect(unquote_plus(value), secrets)
            collect(value, secrets)
            return f"{match.group('delim')}{raw_key}={quote_plus(REDACTED)}"

        # A delimiter in front, so that a pair at the very start has one too.
        padded = " " + text
        # Most texts hold no secret key (an HTML page's pairs are its
        # attributes): the keys alone, found without a Python call per pair,
        # tell. The scan for keys finds every key the pair regex finds.
        if any(_secret_form_key(key) for key in set(_FORM_KEY_RE.findall(padded))):
            text = _FORM_PAIR_RE.sub(form_pair, padded)[1:]

    if html and "<input" in text.lower():

        def html_input(match: re.Match[str]) -> str:
            tag = match.group(0)
            attrs = {m.group("name").lower(): m for m in _HTML_ATTR_RE.finditer(tag, len("<input"))}
            name, value = attrs.get("name"), attrs.get("value")
            if name is None or value is None or not is_secret_key(name.group("value").strip("\"'")):
                return tag
            raw = value.group("value").strip("\"'")
            collect(raw, secrets)
            start, end = value.span("value")
            return tag[:start] + f'"{REDACTED}"' + tag[end:]

        text = _HTML_INPUT_RE.sub(html_input, text)
    return text


# --- the final pass ------------------------------------------------------------------


def _needles(secrets: set[str]) -> list[str]:
    values = {s for s in secrets if s and len(s) >= MIN_SECRET and s != REDACTED}
    for name in ("SECRET_KEY", "SECRET_KEY_FALLBACKS"):
        configured = getattr(settings, name, None)
        for key in [configured] if isinstance(configured, str) else list(configured or []):
            if isinstance(key, str) and key:
                values.add(key)
    # The same secrets as they appear in URLs and form bodies.
    for value in list(values):
        for variant in (quote(value, safe=""), quote_plus(value)):
            if variant != value:
                values.add(variant)
    return sorted(values, key=len, reverse=True)


class Scrubber:
    def __init__(self, secrets: set[str]) -> None:
        self.needles = _needles(secrets)
        self.byte_needles = [n.encode("utf-8") for n in self.needles]
        # Prefixes of long secrets, to catch one cut short by a length limit.
        self.long = [n for n in self.needles if len(n) >= 12]
        self.quick = _as_in_json(self.needles)
        self.quick_long = _as_in_json(self.long)

    @cached_property
    def pattern(self) -> re.Pattern[str] | None:
        # Only a document that needs the walk needs it.
        return re.compile("|".join(re.escape(n) for n in self.needles)) if self.needles else None

    def text(self, value: str) -> str:
        if PASSWORD_HASH_RE.match(value):
            return REDACTED
        if self.pattern is not None and self.pattern.search(value):
            value = self.pattern.sub(REDACTED, value)
        if "$" in value:
            value = PASSWORD_HASH_IN_TEXT_RE.sub(REDACTED, value)
        if self.long and value.endswith("…"):
            value = self._cut_tail(value)
        return value

    def dirty(self, text: str) -> bool:
        """Whether a piece of the document's JSON text may hold something to
        scrub: a secret (or the start of a long one, cut by a length limit),
        a password hash, or base64 content. A few substring searches: most
        documents have nothing, and need no walk."""
        for needle in self.quick:
            if needle in text:
                return True
        # Most "$" of a document open a value tag: only a text with other
        # "$" can hold a password hash.
        if text.count("$") > text.count('"$t"'):
            for marker in _HASH_MARKERS:
                if marker in text:
                    return True
        if '"$t":"bytes"' in text or 'base64":' in text:
            return True
        return bool(self.quick_long) and self._cut_in_text(text)

    def _cut_in_text(self, text: str) -> bool:
        """A string of the JSON text cut at a length limit (ending ``…"``) right
        after the start of a long secret (see ``_cut_tail``)."""
        at = text.find('…"')
        while at != -1:
            before = text[max(0, at - 200) : at].rstrip("'\\\"")
            for needle in self.quick_long:
                tail = before[-(len(needle) - 1) :]
                pos = tail.find(needle[:_PREFIX])
                while pos != -1:
                    if needle.startswith(tail[pos:]):
                        return True
                    pos = tail.find(needle[:_PREFIX], pos + 1)
            at = text.find('…"', at + 2)
        return False

    def _cut_tail(self, value: str) -> str:
        """A repr cut at its length limit may end with the start of a secret."""
        body = value[:-1]
        stripped = body.rstrip("'\"")
        for needle in self.long:
            for length in range(min(len(needle) - 1, len(stripped)), 7, -1):
                if stripped.endswith(needle[:length]):
                    return stripped[: len(stripped) - length] + REDACTED + "…"
        return value

    def base64(self, value: str) -> str:
        try:
            data = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return value
        changed = False
        for needle in self.byte_needles:
            if needle in data:
                data = data.replace(needle, REDACTED.encode())
                changed = True
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        if text is not None and "$" in text:
            cleaned = PASSWORD_HASH_IN_TEXT_RE.sub(REDACTED, text)
            if cleaned != text:
                data = cleaned.encode("utf-8")
                changed = True
        return base64.b64encode(data).decode("ascii") if changed else value

    def walk(self, value: Any, key: str = "") -> Any:
        """The value scrubbed; lists and dicts are changed in place (a copy of a
        document of MAX_EVENTS events would double the recorder's memory)."""
        if isinstance(value, str):
            if key.endswith("base64"):
                return self.base64(value)
            return self.text(value)
        if isinstance(value, list):
            for index, item in enumerate(value):
                if not isinstance(item, _PLAIN):
                    value[index] = self.walk(item, key)
            return value
        if isinstance(value, dict):
            if value.get("$t") == "bytes" and isinstance(value.get("v"), str):
                value["v"] = self.base64(value["v"])
                return value
            # Keys are left alone: they are the document's structure, and a
            # short secret must not rename "content" or "request".
            for name, item in value.items():
                if not isinstance(item, _PLAIN):
                    value[name] = self.walk(item, str(name))
            return value
        if isinstance(value, tuple):
            return [self.walk(v, key) for v in value]
        return value


_PLAIN = (int, float, bool, type(None))
_HASH_MARKERS = tuple(f"{name}$" for name in _HASHERS.split("|"))
# The shortest start of a long secret that _cut_tail looks for.
_PREFIX = 8


def _as_in_json(needles: list[str]) -> list[str]:
    """Each secret as written, and as JSON text escapes it."""
    found = set(needles)
    found.update(json.dumps(needle, ensure_ascii=False)[1:-1] for needle in needles)
    return sorted(found)


def scrub(document: Any, secrets: set[str]) -> Any:
    """Replace every occurrence of a known secret, and every password hash.

    Changes ``document`` in place and returns it."""
    return Scrubber(secrets).walk(document)
