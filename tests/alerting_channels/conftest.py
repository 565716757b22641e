from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from sentinel.alerting.channels.base import Message
from tests.fakes.slack_server import FakeSlackServer
from tests.fakes.twilio_server import FakeTwilioServer


@pytest.fixture(autouse=True)
def _no_twilio_region(monkeypatch: pytest.MonkeyPatch) -> None:
    # With a region/edge set the SDK rewrites the host and would miss the fake.
    monkeypatch.delenv("TWILIO_REGION", raising=False)
    monkeypatch.delenv("TWILIO_EDGE", raising=False)


@pytest.fixture
def twilio_server() -> Iterator[FakeTwilioServer]:
    with FakeTwilioServer() as server:
        yield server


@pytest.fixture
def slack_server() -> Iterator[FakeSlackServer]:
    with FakeSlackServer() as server:
        yield server


@pytest.fixture
def closed_port() -> int:
    """A port nothing listens on: connection refused, immediately."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_message(**overrides: object) -> Message:
    fields: dict[str, object] = {
        "notification_id": "ntf-1",
        "recipient": "+15005550006",
        "subject": "checkout.success_rate",
        "text": "[P1] checkout.success_rate FIRING: 0.81 (band 0.95-0.99) since 12:00 UTC.",
        "fingerprint": "fp-abc",
        "severity": "P1",
        "state": "firing",
    }
    fields.update(overrides)
    return Message(**fields)  # type: ignore[arg-type]
