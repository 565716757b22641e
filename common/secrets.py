"""The secrets this process holds (API keys, auth tokens, signing secrets), so
that text about to leave it, a log line or a provider's error stored for users
to read, can be scrubbed of them whatever put them there (an upstream echoing
our request in its error body, an exception quoting a URL with a key).

Each component registers the secrets of its settings when it is built;
``redact`` replaces every registered value with ``[redacted]``."""

from __future__ import annotations

import threading
from collections.abc import Iterable

REDACTED = "[redacted]"
_MIN_LENGTH = 6  # shorter values would scrub ordinary words; no real secret is that short

_lock = threading.Lock()
_secrets: tuple[str, ...] = ()


def register_secrets(values: Iterable[str | None]) -> None:
    global _secrets
    with _lock:
        known = set(_secrets)
        known.update(v for v in values if v and len(v) >= _MIN_LENGTH)
        # Longest first, so a secret containing another is scrubbed whole.
        _secrets = tuple(sorted(known, key=len, reverse=True))


def redact(text: str) -> str:
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def url_password(url: str | None) -> str | None:
    """The password inside a database URL, if it has one."""
    if not url or "@" not in url:
        return None
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).password  # type: ignore[return-value]
    except (ArgumentError, ValueError):
        return None
