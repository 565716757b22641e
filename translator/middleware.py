"""Request middleware (plain ASGI, no per-request task overhead): a request id,
one log line per request, HTTP metrics by route template, and a generic
500 for unexpected errors."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from common.logs import get_logger, log_context
from translator.metrics import TranslatorMetrics

log = get_logger("translator.http")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

UNMATCHED = "unmatched"  # keeps 404 scans from creating one series per path


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    return getattr(route, "path", None) or UNMATCHED


class RequestMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        metrics: TranslatorMetrics,
    ) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _header(scope, b"x-request-id") or uuid.uuid4().hex[:16]
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        started_response = False

        async def send_tracking(message: Message) -> None:
            nonlocal started_response
            started_response = started_response or message["type"] == "http.response.start"
            await send_with_id(message)

        with log_context(request_id=request_id):
            try:
                await self.app(scope, receive, send_tracking)
            except Exception as exc:
                # Unexpected errors: logged with the request id, answered with a
                # generic 500 that leaks no internals.
                log.error(
                    "http.unhandled_error",
                    exc_info=exc,
                    error=type(exc).__name__,
                    path=scope["path"],
                )
                if started_response:
                    raise
                status = 500
                await _send_json(send_with_id, 500, _error_body(request_id))
            finally:
                self._record(scope, status, time.perf_counter() - started)

    def _record(self, scope: Scope, status: int, seconds: float) -> None:
        route = _route_template(scope)
        self.metrics.http_requests.labels(scope["method"], route, str(status)).inc()
        self.metrics.http_duration.labels(scope["method"], route).observe(seconds)
        log.info(
            "http.request",
            method=scope["method"],
            path=scope["path"],
            route=route,
            status=status,
            ms=round(seconds * 1000, 1),
        )


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            text = value.decode("latin-1")[:64]
            return text if text.isprintable() else None
    return None


def _error_body(request_id: str) -> dict:
    return {"detail": "Internal server error", "request_id": request_id}


async def _send_json(send: Send, status: int, body: dict) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
