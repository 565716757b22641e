"""Fixtures for the source tests: a read-only engine on the test database and
a real translator served by uvicorn on a loopback port."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from common.clock import FakeClock
from common.db import make_engine
from tests.helpers import add_user, make_services
from translator.app import create_app
from translator.services import Services


@pytest.fixture
def ro_engine(database_url: str):  # type: ignore[no-untyped-def]
    engine = make_engine(database_url, read_only=True)
    yield engine
    engine.dispose()


def listening_socket(port: int = 0) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(64)
    return sock


def closed_port() -> int:
    """A loopback port nobody listens on (connection refused)."""
    sock = listening_socket()
    port = sock.getsockname()[1]
    sock.close()
    return port


@contextlib.contextmanager
def serve(services: Services, port: int = 0) -> Iterator[str]:
    """The translator app on 127.0.0.1 in a thread; yields its base URL."""
    sock = listening_socket(port)
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        create_app(services, run_background=False),
        log_config=None,
        access_log=False,
        lifespan="on",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the translator did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@dataclass
class Node:
    """One running translator node and a client with a user's token."""

    services: Services
    url: str
    http: httpx.Client
    headers: dict[str, str]

    @property
    def metrics_url(self) -> str:
        return self.url + "/metrics"

    def get(self, path: str) -> httpx.Response:
        return self.http.get(self.url + path, headers=self.headers)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.post(self.url + path, headers=self.headers, **kwargs)


@pytest.fixture
def translator_node(
    database_url: str, tmp_path: Path, clock: FakeClock
) -> Iterator[Callable[..., contextlib.AbstractContextManager[Node]]]:
    """``with translator_node(port=..., faults=...) as node:`` a live translator."""
    http = httpx.Client(timeout=10, trust_env=False)
    users: dict[str, dict[str, str]] = {}

    @contextlib.contextmanager
    def start(port: int = 0, email: str = "a@example.com", **overrides: Any) -> Iterator[Node]:
        services = make_services(database_url, tmp_path, clock, **overrides)
        try:
            if email not in users:
                users[email] = add_user(services, email)[1]
            with serve(services, port) as url:
                yield Node(services, url, http, users[email])
        finally:
            services.close()

    yield start
    http.close()
