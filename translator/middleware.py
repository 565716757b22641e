"""Request middleware (plain ASGI, no per-request task overhead): a request id,
one log line per request, HTTP metrics by route template, and a generic
500 for unexpected errors."""

from __future__ import annotations

import itertools
import json
import os
import time
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
# Other methods share one label, for the same reason.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
REQUEST_ID_HEADER = b"x-request-id"


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    return getattr(route, "path", None) or UNMATCHED


class RequestIds:
    """16 hex characters: a random per-process prefix and a counter (no syscall per id)."""

    def __init__(self) -> None:
        self._prefix = os.urandom(4).hex()
        self._counter = itertools.count(int.from_bytes(os.urandom(3), "big"))

    def next(self) -> str:
        return f"{self._prefix}{next(self._counter) & 0xFFFFFFFF:08x}"


class RequestMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        metrics: TranslatorMetrics,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.request_ids = RequestIds()
        # (method, route, status) -> label children, looked up once per series.
        self._series: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _header(scope, REQUEST_ID_HEADER) or self.request_ids.next()
        id_header = (REQUEST_ID_HEADER, request_id.encode())
        started = time.perf_counter()
        response = _Response()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                response.status = message["status"]
                response.started = True
                message["headers"] = [*message.get("headers", ()), id_header]
            await send(message)

        with log_context(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_id)
            except Exception as exc:
                # Unexpected errors: logged with the request id, answered with a
                # generic 500 that leaks no internals.
                log.error(
                    "http.unhandled_error",
                    exc_info=exc,
                    error=type(exc).__name__,
                    path=scope["path"],
                )
                if response.started:
                    raise
                response.status = 500
                await _send_json(send_with_id, 500, _error_body(request_id))
            finally:
                self._record(scope, response.status, time.perf_counter() - started)

    def _record(self, scope: Scope, status: int, seconds: float) -> None:
        method, route = scope["method"], _route_template(scope)
        series = self._series.get((method, route, status))
        if series is None:
            series = self._series_of(method, route, status)
        series[0].inc()
        series[1].observe(seconds)
        # Queued: made into text and written with others by the log flush thread
        # (within 50 ms, after the response); the request pays for neither.
        log.info_batched(
            "http.request",
            method=method,
            path=scope["path"],
            route=route,
            status=status,
            ms=round(seconds * 1000, 1),
        )

    def _series_of(self, method: str, route: str, status: int) -> tuple[Any, Any]:
        label = method if method in KNOWN_METHODS else "other"
        series = (
            self.metrics.http_requests.labels(label, route, str(status)),
            self.metrics.http_duration.labels(label, route),
        )
        if method in KNOWN_METHODS:  # other methods are not cached: the key is the caller's
            self._series[(method, route, status)] = series
        return series


class _Response:
    __slots__ = ("status", "started")

    def __init__(self) -> None:
        self.status = 500
        self.started = False


def _header(scope: Scope, name: bytes) -> str | None:
    value = dict(scope.get("headers", ())).get(name)  # built in C: cheaper than a loop
    if value is None:
        return None
    text = value.decode("latin-1")[:64]
    return text if text.isprintable() else None


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
