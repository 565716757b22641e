"""A real HTTP server that speaks Slack's ``chat.postMessage``, ``chat.update`` and
``conversations.history`` (what a channel holds, with each message's metadata).

The official ``slack_sdk`` WebClient is pointed at it:

    with FakeSlackServer() as server:
        client = server.client()  # WebClient(token, base_url=server.base_url)
        server.script(SlackReply.rate_limited("3"))
        ...
        assert server.requests[0].params["channel"] == "#alerts"
"""

from __future__ import annotations

import contextlib
import itertools
import json
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs

from slack_sdk import WebClient

from tests.fakes.base import ScriptedServer

BOT_TOKEN = "xoxb-fake-token"
_METHODS = {"/chat.postMessage", "/chat.update"}


@dataclass(frozen=True)
class SlackReply:
    """What one request gets back; ``None`` body means a realistic ``ok`` answer."""

    status: int = 200
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def ok(cls) -> SlackReply:
        return cls()

    @classmethod
    def error(cls, error: str, status: int = 200) -> SlackReply:
        # Slack reports most API errors as HTTP 200 with ok=false.
        return cls(status=status, body={"ok": False, "error": error})

    @classmethod
    def rate_limited(cls, retry_after: str = "30") -> SlackReply:
        return cls(
            status=429,
            body={"ok": False, "error": "ratelimited"},
            headers={"Retry-After": retry_after},
        )

    @classmethod
    def server_error(cls, status: int = 500) -> SlackReply:
        return cls(status=status, body={"ok": False, "error": "internal_error"})


@dataclass(frozen=True)
class SlackRequest:
    method: str  # Slack API method, e.g. "chat.postMessage"
    headers: dict[str, str]  # lower-cased names
    params: dict[str, Any]  # JSON body, or form fields (first value each)


class FakeSlackServer(ScriptedServer[SlackRequest, SlackReply]):
    """Serves the two chat methods on 127.0.0.1; scripted replies first, then ``default``."""

    name = "fake-slack"

    def __init__(self, token: str = BOT_TOKEN, default: SlackReply | None = None) -> None:
        self.token = token
        self._ts = itertools.count(1)
        self.history: dict[str, list[dict[str, Any]]] = {}  # channel -> posted, oldest first
        super().__init__(default or SlackReply.ok())

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"  # WebClient wants the trailing slash

    def client(self, token: str | None = None) -> WebClient:
        # No retry handlers: the channel, not the SDK, decides about retries.
        return WebClient(token=token or self.token, base_url=self.base_url, retry_handlers=[])

    def _ok_body(self, request: SlackRequest) -> dict[str, Any]:
        channel = request.params.get("channel")
        if request.method == "chat.update":
            ts = request.params.get("ts")
        else:
            ts = f"1700000000.{next(self._ts) * 100:06d}"
        message = {
            "type": "message",
            "text": request.params.get("text"),
            "blocks": request.params.get("blocks"),
            "ts": ts,
            "bot_id": "B0FAKE",
        }
        if request.method == "chat.postMessage":
            metadata = request.params.get("metadata")
            if isinstance(metadata, str):
                metadata = json.loads(metadata)
            with self._lock:
                self.history.setdefault(str(channel), []).append({**message, "metadata": metadata})
        return {
            "ok": True,
            "channel": channel,
            "ts": ts,
            "text": message["text"],
            "message": message,
        }

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # avoid ~40 ms Nagle/delayed-ACK stalls

            def do_GET(self) -> None:
                path, _, query = self.path.partition("?")
                self._history(path, {k: v[0] for k, v in parse_qs(query).items()})

            def _history(self, path: str, params: dict[str, Any]) -> None:
                if path != "/conversations.history":
                    self._send(404, {"ok": False, "error": "unknown_method"}, {})
                    return
                if self.headers.get("Authorization") != f"Bearer {server.token}":
                    self._send(200, {"ok": False, "error": "invalid_auth"}, {})
                    return
                with server._lock:
                    posted = server.history.get(str(params.get("channel", "")))
                if posted is None:
                    self._send(200, {"ok": False, "error": "channel_not_found"}, {})
                    return
                # ``oldest`` is accepted and ignored: this fake's ts are counters, not times.
                messages = list(reversed(posted))
                self._send(200, {"ok": True, "messages": messages, "has_more": False}, {})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                path, _, query = self.path.partition("?")
                if path == "/conversations.history":  # slack_sdk sends it as a POST
                    params = _params(self.headers.get("Content-Type") or "", raw)
                    params.update({k: v[0] for k, v in parse_qs(query).items()})
                    self._history(path, params)
                    return
                if path not in _METHODS:
                    self._send(404, {"ok": False, "error": "unknown_method"}, {})
                    return
                request = SlackRequest(
                    method=path.lstrip("/"),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    params=_params(self.headers.get("Content-Type") or "", raw),
                )
                auth = self.headers.get("Authorization")
                reply = server._take(
                    request,
                    None if auth == f"Bearer {server.token}" else SlackReply.error("invalid_auth"),
                )
                payload = reply.body if reply.body is not None else server._ok_body(request)
                self._send(reply.status, payload, reply.headers)

            def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str]) -> None:
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json; charset=utf-8")
                    self.send_header("Content-Length", str(len(data)))
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up; nothing to tell it

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep pytest output clean

        return Handler


def _params(content_type: str, raw: bytes) -> dict[str, Any]:
    if content_type.startswith("application/json"):
        data = json.loads(raw or b"{}")
        return data if isinstance(data, dict) else {}
    form = {k: v[0] for k, v in parse_qs(raw.decode(), keep_blank_values=True).items()}
    # Form-encoded Slack calls carry blocks as a JSON string.
    if isinstance(form.get("blocks"), str):
        with contextlib.suppress(json.JSONDecodeError):
            form["blocks"] = json.loads(form["blocks"])
    return form
