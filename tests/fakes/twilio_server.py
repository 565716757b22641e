"""A real HTTP server that speaks the Twilio REST endpoints the alerting channels use:
creating Messages and Calls, and reading them back (one by sid, or a list filtered by
``To`` and ``From``), as a dispatcher does to settle a page it took over.

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
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs

from twilio.rest import Client

from tests.fakes.base import ScriptedServer

ACCOUNT_SID = "AC" + "0" * 32
AUTH_TOKEN = "fake-auth-token"
_PATH = re.compile(r"^/2010-04-01/Accounts/(?P<sid>AC\w+)/(?P<resource>Messages|Calls)\.json$")
_ONE = re.compile(
    r"^/2010-04-01/Accounts/(?P<sid>AC\w+)/(?P<resource>Messages|Calls)/(?P<rsid>\w+)\.json$"
)


@dataclass(frozen=True)
class TwilioReply:
    """What one create request gets back; ``None`` body means a realistic success."""

    status: int = 201
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    # Seconds to wait before answering (a hung Twilio: longer than the client's timeout).
    delay: float = 0.0

    @classmethod
    def ok(cls) -> TwilioReply:
        return cls()

    @classmethod
    def hang(cls, seconds: float = 3600.0) -> TwilioReply:
        """Never answers in time, and creates nothing."""
        return cls(
            status=504,
            body=cls.error(504, 20504, "Gateway Timeout").body,
            delay=seconds,
        )

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
        # What Twilio holds, by sid, in creation order: what GET reads back.
        self.resources: dict[str, dict[str, Any]] = {}
        # Every answer waits this long first (a slow provider); 0: at once.
        self.latency = 0.0
        # Chooses the reply for a create before the script does (None: the script's).
        self.rule: Callable[[TwilioRequest], TwilioReply | None] | None = None
        super().__init__(default or TwilioReply.ok())

    def created(self, resource: str = "Messages") -> list[dict[str, Any]]:
        """Messages (or Calls) Twilio accepted, in order."""
        with self._lock:
            return [
                r
                for r in self.resources.values()
                if r["sid"].startswith("SM" if resource == "Messages" else "CA")
            ]

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
        now = formatdate(time.time(), usegmt=False)
        common = {
            "account_sid": sid,
            "api_version": "2010-04-01",
            "date_created": now,
            "date_updated": now,
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
        resource = {"sid": resource_sid, **common, **extra, "uri": uri}
        with self._lock:
            self.resources[resource_sid] = resource
        return resource

    def _read(self, path: str, query: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        one = _ONE.match(path)
        if one is not None:
            with self._lock:
                found = self.resources.get(one["rsid"])
            if found is None or one["sid"] != self.account_sid:
                return 404, {"code": 20404, "message": "Not Found", "status": 404}
            return 200, found
        many = _PATH.match(path)
        if many is None:
            return 404, {"code": 20404, "message": "Not Found", "status": 404}
        prefix = "SM" if many["resource"] == "Messages" else "CA"
        wanted = {k: v[0] for k, v in query.items() if k in ("To", "From")}
        with self._lock:
            rows = [
                r
                for r in reversed(self.resources.values())  # Twilio lists the newest first
                if r["sid"].startswith(prefix)
                and all(r.get(k.lower()) == v for k, v in wanted.items())
            ]
        key = many["resource"].lower()
        page_size = int((query.get("PageSize") or ["50"])[0])
        return 200, {
            key: rows[:page_size],
            "end": min(len(rows), page_size) - 1,
            "first_page_uri": path,
            "next_page_uri": None,
            "page": 0,
            "page_size": page_size,
            "previous_page_uri": None,
            "start": 0,
            "uri": path,
        }

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # avoid ~40 ms Nagle/delayed-ACK stalls

            def do_GET(self) -> None:
                path, _, query = self.path.partition("?")
                sid_match = _ONE.match(path) or _PATH.match(path)
                if sid_match is None or not server._authorized(
                    self.headers.get("Authorization"), sid_match["sid"]
                ):
                    self._send(401, {"code": 20003, "message": "Authenticate", "status": 401}, {})
                    return
                if server.latency:
                    time.sleep(server.latency)
                status, payload = server._read(path, parse_qs(query))
                self._send(status, payload, {})

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
                refusal = None if authorized else TwilioReply.error(401, 20003, "Authenticate")
                if refusal is None and server.rule is not None:
                    refusal = server.rule(request)
                reply = server._take(request, refusal)
                payload = reply.body
                if payload is None:  # created on arrival, whenever the answer goes out
                    payload = server._resource(request, match["sid"])
                if server.latency or reply.delay:
                    time.sleep(server.latency + reply.delay)
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
