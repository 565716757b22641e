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

from common.logs import (
    format_line,
    get_logger,
    pop_context,
    push_context,
    quote,
    timestamp,
)
from common.secrets import redact
from translator.metrics import HTTP_FOLD_AT, HttpSeries, TranslatorMetrics

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
REQUEST_EVENT = "http.request"


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


class _Series:
    """What a request's (method, matched route, status) makes of it, built once: its
    metrics series and the fixed parts of its log line."""

    __slots__ = ("matched", "method", "route", "status", "metrics", "head", "tail")

    def __init__(
        self, matched: Any, method: str, route: str, status: int, metrics: HttpSeries
    ) -> None:
        self.matched = matched  # the route object: its id is in the key
        self.method, self.route, self.status, self.metrics = method, route, status, metrics
        # ``<time> <head><path><tail><ms> request_id=<id>``, as format_line writes it.
        self.head = f"INFO {log.name} event={REQUEST_EVENT} method={quote(method)} path="
        self.tail = f" route={quote(route)} status={status} ms="


class _RequestLine(tuple):
    """A request's log line, queued as its parts ``(created, series, path, seconds,
    context)`` (a tuple: made without a Python call) and made into text (one format
    call) by the log flush thread: the text ``format_line`` makes of the fields
    ``method path route status ms`` and the context."""

    @property
    def parts(self) -> tuple:
        created, s, path, seconds, context = self
        fields = {
            "method": s.method,
            "path": path,
            "route": s.route,
            "status": s.status,
            "ms": round(seconds * 1000, 1),
        }
        return (created, "INFO", log.name, REQUEST_EVENT, fields, context)

    def text(self) -> str:
        line: str | None = self.__dict__.get("line")
        if line is None:
            created, s, path, seconds, context = self
            if len(context) == 1 and "request_id" in context:  # what the middleware sets
                line = redact(
                    f"{timestamp(created)} {s.head}{quote(path)}{s.tail}"
                    f"{round(seconds * 1000, 1)} request_id={quote(context['request_id'])}"
                )
            else:  # fields of the server's own around it: the general way
                line = format_line(*self.parts)
            self.line = line
        return line


class RequestMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        metrics: TranslatorMetrics,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.request_ids = RequestIds()
        self._pending = metrics.http_pending  # None: each request recorded at once
        # (method, id of the matched route, status) -> its series, looked up once
        # (routes are not hashable).
        self._series: dict[tuple[str, int, int], _Series] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _header(scope, REQUEST_ID_HEADER) or self.request_ids.next()
        id_header = (REQUEST_ID_HEADER, request_id.encode())
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                message["headers"] = [*message.get("headers", ()), id_header]
            await send(message)

        token, context = push_context("request_id", request_id)
        started = time.perf_counter()
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
            if response_started:
                raise
            status = 500
            await _send_json(send_with_id, 500, _error_body(request_id))
        finally:
            seconds = time.perf_counter() - started
            try:  # inline, not in methods of its own: this runs for every request
                matched = scope.get("route")
                series = self._series.get((scope["method"], id(matched), status))
                if series is None or series.matched is not matched:
                    series = self._series_of(scope, status)
                pending = self._pending
                if pending is None:
                    series.metrics.observe(seconds)
                else:
                    pending.append((series.metrics, seconds))
                    if len(pending) >= HTTP_FOLD_AT:
                        self.metrics.fold_http()
                handlers = log.line_handlers()
                if handlers:
                    # Queued: made into text and written with others by the log flush
                    # thread (within 50 ms, after the response); the request pays for
                    # neither.
                    line = _RequestLine((time.time(), series, scope["path"], seconds, context))
                    for handler in handlers:
                        handler.write_later(line)
                elif handlers is None:  # another listener (a test's capture): a record
                    log.info_batched(
                        REQUEST_EVENT,
                        method=series.method,
                        path=scope["path"],
                        route=series.route,
                        status=status,
                        ms=round(seconds * 1000, 1),
                    )
            finally:
                pop_context(token)

    def _series_of(self, scope: Scope, status: int) -> _Series:
        method, route = scope["method"], _route_template(scope)
        label = method if method in KNOWN_METHODS else "other"
        matched = scope.get("route")
        series = _Series(
            matched, method, route, status, self.metrics.http_series(label, route, status)
        )
        if method in KNOWN_METHODS:  # other methods are not cached: the key is the caller's
            self._series[(method, id(matched), status)] = series
        return series


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
