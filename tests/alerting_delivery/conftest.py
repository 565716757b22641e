"""Delivery under provider faults: the alerting rig (tests.alerting_pipeline),
channels that answer as a provider in trouble would, and the fake Twilio."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from sentinel.alerting.outbox import Outgoing
from tests.alerting_channels.conftest import closed_port  # noqa: F401  (a refused port)
from tests.alerting_pipeline.conftest import rig  # noqa: F401  (the alerting rig)
from tests.fakes.twilio_server import FakeTwilioServer


@dataclass
class Answer:
    ok: bool = True
    retryable: bool = True
    provider_id: str | None = None
    retry_after: float | None = None
    error: str | None = None
    status: str = "queued"


class Provider:
    """A channel whose provider can be up, down (HTTP 500) or hung."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.up = True
        self.release = threading.Event()  # a hung provider answers once this is set
        self.hung = False
        self.sent: list[Outgoing] = []
        self.tries = 0
        self._lock = threading.Lock()

    def __call__(self, item: Outgoing) -> Answer:
        with self._lock:
            self.tries += 1
        if self.hung:
            self.release.wait(60)
            return Answer(ok=False, error=f"{self.name} timed out")
        if not self.up:
            return Answer(ok=False, error=f"{self.name} 500 Internal Server Error")
        with self._lock:
            self.sent.append(item)
        return Answer(provider_id=f"{self.name}-{item.id}")


@pytest.fixture(autouse=True)
def _no_twilio_region(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TWILIO_REGION", raising=False)
    monkeypatch.delenv("TWILIO_EDGE", raising=False)


@pytest.fixture
def twilio_server() -> Iterator[FakeTwilioServer]:
    with FakeTwilioServer() as server:
        yield server
