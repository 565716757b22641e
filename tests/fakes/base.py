"""What every fake server shares: a threaded HTTP server on an ephemeral
loopback port, a script of replies (then a default), and the requests it saw."""

from __future__ import annotations

import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Generic, Self, TypeVar

Req = TypeVar("Req")
Rep = TypeVar("Rep")


class _HTTPServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        import sys

        if isinstance(sys.exc_info()[1], ConnectionError):
            return  # a client that gave up (a timeout, a killed process): expected here
        super().handle_error(request, client_address)  # type: ignore[arg-type]


class ScriptedServer(Generic[Req, Rep]):
    name = "fake"

    def __init__(self, default: Rep) -> None:
        self.default = default
        self._script: deque[Rep] = deque()
        self._requests: list[Req] = []
        self._lock = threading.Lock()
        self._httpd = _HTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        raise NotImplementedError

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def requests(self) -> list[Req]:
        with self._lock:
            return list(self._requests)

    def script(self, *replies: Rep) -> None:
        """Replies for the next requests, in order; then the default again."""
        with self._lock:
            self._script.extend(replies)

    def _take(self, request: Req, refusal: Rep | None = None) -> Rep:
        """Record ``request`` and choose its reply (``refusal`` wins, e.g. bad auth)."""
        with self._lock:
            self._requests.append(request)
            if refusal is not None:
                return refusal
            return self._script.popleft() if self._script else self.default

    def start(self) -> Self:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.01},
            name=self.name,
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
