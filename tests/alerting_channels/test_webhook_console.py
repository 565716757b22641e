from __future__ import annotations

import io
import json
from pathlib import Path

import httpx
import pytest

from sentinel.alerting.channels.base import Channel
from sentinel.alerting.channels.outbox_console import ConsoleChannel
from sentinel.alerting.channels.slack import SlackChannel
from sentinel.alerting.channels.twilio_sms import TwilioSmsChannel
from sentinel.alerting.channels.twilio_voice import TwilioVoiceChannel
from sentinel.alerting.channels.webhook import (
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookChannel,
    verify_webhook,
)
from tests.alerting_channels.conftest import make_message

URL = "https://hooks.example/vigil"
SECRET = "whsec-test"


def webhook(handler: httpx.MockTransport) -> WebhookChannel:
    return WebhookChannel(httpx.Client(transport=handler), URL, SECRET, clock=lambda: 1_700_000_000)


def test_webhook_posts_signed_json() -> None:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(202, headers={"x-request-id": "req-1"})

    message = make_message(recipient="")
    result = webhook(httpx.MockTransport(handle)).send(message)

    assert result.ok and result.provider_id == "req-1"
    (request,) = seen
    assert str(request.url) == URL
    body = request.read()
    assert json.loads(body)["fingerprint"] == "fp-abc"
    assert request.headers[TIMESTAMP_HEADER] == "1700000000"
    assert request.headers[IDEMPOTENCY_HEADER] == "ntf-1"
    signature = request.headers[SIGNATURE_HEADER]
    assert verify_webhook(SECRET, "1700000000", body, signature)
    assert not verify_webhook("other-secret", "1700000000", body, signature)
    assert not verify_webhook(SECRET, "1700000001", body, signature)
    assert not verify_webhook(SECRET, "1700000000", body + b" ", signature)
    assert not verify_webhook(SECRET, "1700000000", body, None)


@pytest.mark.parametrize(
    ("status", "retryable"), [(500, True), (502, True), (429, True), (400, False), (404, False)]
)
def test_webhook_status_classes(status: int, retryable: bool) -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(status, text="nope"))
    result = webhook(transport).send(make_message(recipient=""))
    assert not result.ok and result.retryable is retryable and result.status == "failed"


def test_webhook_retry_after_on_429() -> None:
    transport = httpx.MockTransport(
        lambda request: httpx.Response(429, headers={"Retry-After": "12"})
    )
    result = webhook(transport).send(make_message(recipient=""))
    assert result.retry_after == 12.0


@pytest.mark.parametrize("error", [httpx.ReadTimeout, httpx.ConnectError])
def test_webhook_timeouts_and_connection_errors_are_retryable(error: type[Exception]) -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        raise error("boom", request=request)  # type: ignore[call-arg]

    result = webhook(httpx.MockTransport(handle)).send(make_message(recipient=""))
    assert not result.ok and result.retryable


def test_console_prints_and_appends_json_lines(tmp_path: Path) -> None:
    stream = io.StringIO()
    path = tmp_path / "outbox" / "sent.jsonl"
    console = ConsoleChannel(stream, path)

    first = console.send(make_message())
    second = console.send(make_message(notification_id="ntf-2", state="resolved"))

    assert first.ok and second.ok
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 and "ntf-1" in lines[0] and "resolved" in lines[1]
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["notification_id"] for r in records] == ["ntf-1", "ntf-2"]
    assert records[0]["text"] == make_message().text
    assert records[0]["fingerprint"] == "fp-abc" and "at" in records[0]


def test_console_without_file_still_ok() -> None:
    stream = io.StringIO()
    assert ConsoleChannel(stream, None).send(make_message()).ok
    assert stream.getvalue().count("\n") == 1


def test_channels_satisfy_the_protocol() -> None:
    classes = (ConsoleChannel, WebhookChannel, SlackChannel, TwilioSmsChannel, TwilioVoiceChannel)
    for cls in classes:
        channel: type[Channel] = cls  # type-checks that each class fits the Protocol
        assert isinstance(channel.name, str)
    assert len({cls.name for cls in classes}) == len(classes)
