"""A real HTTP server that speaks the two Twilio REST endpoints the alerting channels use.

The official ``twilio`` client is pointed at it, so request encoding, auth and error
parsing are the SDK's own:

    with FakeTwilioServer() as server:
        client = server.client()  # Client(sid, token) with api.base_url -> the fake
        server.script(TwilioReply.server_error(), TwilioReply.ok())
        ...
        assert server.requests[0].param("Body") == "..."
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs

from twilio.rest import Client

from tests.fakes.base import ScriptedServer

ACCOUNT_SID = "AC" + "0" * 32
AUTH_TOKEN = "fake-auth-token"
_PATH = re.compile(r"^/2010-04-01/Accounts/(?P<sid>AC\w+)/(?P<resource>Messages|Calls)\.json$")


@dataclass(frozen=True)
class TwilioReply:
    """What one create request gets back; ``None`` body means a realistic success."""

    status: int = 201
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def ok(cls) -> TwilioReply:
        return cls()

    @classmethod
    def error(cls, status: int, code: int, message: str) -> TwilioReply:
        body = {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        }
        return cls(status=status, body=body)

    @classmethod
    def invalid_number(cls) -> TwilioReply:
        return cls.error(400, 21211, "The 'To' number +15005550001 is not a valid phone number.")

    @classmethod
    def rate_limited(cls, retry_after: str | None = "1") -> TwilioReply:
        reply = cls.error(429, 20429, "Too Many Requests")
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        return cls(status=429, body=reply.body, headers=headers)

    @classmethod
    def server_error(cls, status: int = 500) -> TwilioReply:
        return cls.error(status, 20500, "Internal Server Error")


@dataclass(frozen=True)
class TwilioRequest:
    method: str
    path: str
    resource: str  # "Messages" or "Calls"
    headers: dict[str, str]  # lower-cased names
    form: dict[str, list[str]]
    received_at: float = 0.0  # wall-clock seconds (time.time()) when it arrived

    def param(self, name: str) -> str | None:
        values = self.form.get(name)
        return values[0] if values else None


class FakeTwilioServer(ScriptedServer[TwilioRequest, TwilioReply]):
    """Serves ``POST /2010-04-01/Accounts/{sid}/{Messages,Calls}.json`` on 127.0.0.1.

    Scripted replies are used in order, then ``default``. Bad credentials get Twilio's 401
    before the script is consulted (and are still recorded).
    """

    def __init__(
        self,
        account_sid: str = ACCOUNT_SID,
        auth_token: str = AUTH_TOKEN,
        default: TwilioReply | None = None,
    ) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self._ids = itertools.count(1)
        super().__init__(default or TwilioReply.ok())

    def client(self, account_sid: str | None = None, auth_token: str | None = None) -> Client:
        """The official client, routed here (TWILIO_REGION/TWILIO_EDGE must be unset)."""
        client = Client(account_sid or self.account_sid, auth_token or self.auth_token)
        client.api.base_url = self.base_url
        return client

    def _authorized(self, header: str | None, sid: str) -> bool:
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        return header == f"Basic {expected}" and sid == self.account_sid

    def _resource(self, request: TwilioRequest, sid: str) -> dict[str, Any]:
        number = next(self._ids)
        common = {
            "account_sid": sid,
            "api_version": "2010-04-01",
            "date_created": "Sun, 22 Nov 2026 12:00:00 +0000",
            "date_updated": "Sun, 22 Nov 2026 12:00:00 +0000",
            "to": request.param("To"),
            "from": request.param("From"),
            "status": "queued",
        }
        if request.resource == "Messages":
            resource_sid = f"SM{number:032x}"
            extra = {
                "body": request.param("Body"),
                "direction": "outbound-api",
                "num_segments": "1",
            }
        else:
            resource_sid = f"CA{number:032x}"
            extra = {"direction": "outbound-api", "answered_by": None, "duration": None}
        uri = f"/2010-04-01/Accounts/{sid}/{request.resource}/{resource_sid}.json"
        return {"sid": resource_sid, **common, **extra, "uri": uri}

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # avoid ~40 ms Nagle/delayed-ACK stalls

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode()
                match = _PATH.match(self.path.split("?", 1)[0])
                if match is None:
                    self._send(404, {"code": 20404, "message": "Not Found", "status": 404}, {})
                    return
                request = TwilioRequest(
                    method="POST",
                    path=self.path,
                    resource=match["resource"],
                    headers={k.lower(): v for k, v in self.headers.items()},
                    form=parse_qs(body, keep_blank_values=True),
                    received_at=time.time(),
                )
                authorized = server._authorized(self.headers.get("Authorization"), match["sid"])
                reply = server._take(
                    request, None if authorized else TwilioReply.error(401, 20003, "Authenticate")
                )
                payload = reply.body
                if payload is None:
                    payload = server._resource(request, match["sid"])
                self._send(reply.status, payload, reply.headers)

            def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str]) -> None:
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
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
