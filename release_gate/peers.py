"""What every HTTP call to a peer (the sentinel, postmortems, a node's
/metrics) shares: the bearer header and a one-line error text."""

from __future__ import annotations


def bearer(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def error_text(exc: BaseException) -> str:
    """The error's message, or its type when it has none (httpx timeouts often don't)."""
    return str(exc) or type(exc).__name__
