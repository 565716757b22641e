"""Refuse NUL characters in requests before they reach a database.

PostgreSQL's text and JSON types cannot hold U+0000, so a NUL anywhere in a
query parameter or a JSON or form field would end as a driver error (500) on
PostgreSQL while SQLite stores it. No field of any API means a NUL, so it is
refused at the edge: 422, saying where it was. File uploads (multipart) are
binary and pass untouched."""

from __future__ import annotations

import json
from typing import Any

Scope = dict[str, Any]
Message = dict[str, Any]

_FORM = "application/x-www-form-urlencoded"


def _is_json(content_type: str) -> bool:
    """What FastAPI reads as JSON: application/json and any application/*+json
    (application/merge-patch+json...), so none of them slips past the guard."""
    kind = content_type.split(";", 1)[0].strip()
    return kind == "application/json" or (
        kind.startswith("application/") and kind.endswith("+json")
    )


def _has_nul(raw: bytes) -> bool:
    """In a query string or a form body: raw or percent-encoded."""
    return b"\x00" in raw or b"%00" in raw


def _json_has_nul(raw: bytes) -> bool:
    if b"\x00" in raw:
        return True
    if b"\\u0000" not in raw.lower():
        return False
    try:
        return _holds_nul(json.loads(raw))
    except ValueError:
        return False  # not JSON: the app's own validation answers


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds_nul(v) for v in value)
    return False


class RefuseNulMiddleware:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if _has_nul(scope.get("query_string", b"")) or "\x00" in scope.get("path", ""):
            await _refuse(send, "query")
            return
        headers = dict(scope.get("headers") or [])
        content_type = headers.get(b"content-type", b"").decode("latin-1").lower()
        is_json = _is_json(content_type)
        if not is_json and not content_type.startswith(_FORM):
            await self.app(scope, receive, send)
            return
        # The whole body, however large: the app reads all of a JSON or form body
        # anyway, and a NUL past any cut would reach the database.
        chunks: list[bytes] = []
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([], message), send)
                return
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        check = _json_has_nul if is_json else _has_nul
        if check(body):
            await _refuse(send, "body")
            return
        await self.app(scope, _replay([body], None), send)


def _replay(bodies: list[bytes], last: Message | None) -> Any:
    """A ``receive`` that hands the app what was already read."""
    pending = [{"type": "http.request", "body": b, "more_body": False} for b in bodies]
    if last is not None:
        pending.append(last)

    async def receive() -> Message:
        if pending:
            return pending.pop(0)
        return {"type": "http.disconnect"}

    return receive


async def _refuse(send: Any, where: str) -> None:
    body = json.dumps(
        {
            "detail": f"NUL characters (U+0000) are not accepted in the {where}",
            "errors": [{"field": where, "message": "contains a NUL character"}],
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 422,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
