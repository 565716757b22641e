"""A real HTTP server that pretends to be an OpenAI-compatible chat-completions API.

Tests script what each request gets back and then inspect what was received, so
the provider is exercised through the real httpx client and a real socket.

    with FakeOpenAIServer() as server:
        server.script(Reply.server_error(), Reply.ok("Привет"))
        provider = OpenAICompatibleProvider("fake", server.base_url, "key", "m", timeout=0.2)
        ...
        assert server.requests[0].headers["authorization"] == "Bearer key"
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.fakes.base import ScriptedServer


@dataclass(frozen=True)
class Reply:
    """What one request gets back."""

    status: int = 200
    content: str | None = "translated"
    headers: dict[str, str] = field(default_factory=dict)
    raw_body: bytes | None = None  # sent verbatim instead of a completion
    delay: float = 0.0  # seconds to wait before answering

    @classmethod
    def ok(cls, content: str, delay: float = 0.0) -> Reply:
        return cls(content=content, delay=delay)

    @classmethod
    def unauthorized(cls) -> Reply:
        return cls.error(401, "invalid_api_key")

    @classmethod
    def rate_limited(cls, retry_after: str | None = "2") -> Reply:
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        return cls(
            status=429, raw_body=_error_body("rate_limit_exceeded"), headers=headers, content=None
        )

    @classmethod
    def server_error(cls, status: int = 500) -> Reply:
        return cls.error(status, "server_error")

    @classmethod
    def error(cls, status: int, code: str) -> Reply:
        return cls(status=status, raw_body=_error_body(code), content=None)

    @classmethod
    def malformed(cls) -> Reply:
        return cls(raw_body=b"{not json", content=None)

    @classmethod
    def no_choices(cls) -> Reply:
        return cls(raw_body=json.dumps({"choices": []}).encode(), content=None)

    @classmethod
    def slow(cls, delay: float, content: str = "too late") -> Reply:
        return cls(content=content, delay=delay)


def _error_body(code: str) -> bytes:
    return json.dumps({"error": {"message": code.replace("_", " "), "code": code}}).encode()


@dataclass(frozen=True)
class ReceivedRequest:
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class FakeOpenAIServer(ScriptedServer[ReceivedRequest, Reply]):
    """Serves ``POST /v1/chat/completions`` on 127.0.0.1 and an ephemeral port.

    Scripted replies are used in order; when the script runs out, ``default`` is used.
    """

    name = "fake-openai"

    def __init__(self, default: Reply | None = None) -> None:
        # Set on stop so a delayed reply does not hold the test up.
        self._stopping = threading.Event()
        super().__init__(default or Reply.ok("translated"))

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"  # as OpenAI-compatible base URLs are given

    @property
    def request_count(self) -> int:
        with self._lock:
            return len(self._requests)

    def stop(self) -> None:
        self._stopping.set()
        super().stop()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes; without this, Nagle plus delayed
            # ACKs add ~40 ms to every request.
            disable_nagle_algorithm = True

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if self.path != "/v1/chat/completions":
                    self._send(404, _error_body("not_found"), {})
                    return
                request = ReceivedRequest(
                    method="POST",
                    path=self.path,
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                )
                reply = server._take(request)
                if reply.delay and server._stopping.wait(reply.delay):
                    self.close_connection = True
                    return
                payload = reply.raw_body
                if payload is None:
                    model = request.json.get("model", "fake-model")
                    payload = json.dumps(_completion(model, reply.content)).encode()
                self._send(reply.status, payload, reply.headers)

            def _send(self, status: int, payload: bytes, headers: dict[str, str]) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test); nothing to tell it

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep pytest output clean

        return Handler


def _completion(model: str, content: str | None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }
