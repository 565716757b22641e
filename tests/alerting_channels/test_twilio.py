from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from sentinel.alerting.channels.twilio_sms import TwilioSmsChannel
from sentinel.alerting.channels.twilio_voice import (
    MENU_PROMPT,
    TwilioVoiceChannel,
    answered_by_human,
    call_twiml,
    keypress_action,
)
from tests.alerting_channels.conftest import make_message
from tests.fakes.twilio_server import FakeTwilioServer, TwilioReply

FROM = "+15005550000"
CALLBACK = "https://vigil.example/twilio/status"


def sms(server: FakeTwilioServer, **client_kwargs: str) -> TwilioSmsChannel:
    return TwilioSmsChannel(server.client(**client_kwargs), FROM, CALLBACK)


def voice(server: FakeTwilioServer) -> TwilioVoiceChannel:
    return TwilioVoiceChannel(server.client(), FROM, "https://vigil.example/voice/", CALLBACK)


def test_sms_success_sends_form_to_messages_endpoint(twilio_server: FakeTwilioServer) -> None:
    message = make_message()
    result = sms(twilio_server).send(message)

    assert result.ok and result.status == "queued" and not result.retryable
    assert result.provider_id is not None and result.provider_id.startswith("SM")
    (request,) = twilio_server.requests
    assert request.resource == "Messages"
    assert request.path == f"/2010-04-01/Accounts/{twilio_server.account_sid}/Messages.json"
    assert request.param("To") == "+15005550006"
    assert request.param("From") == FROM
    assert request.param("Body") == message.text
    assert request.param("StatusCallback") == CALLBACK


@pytest.mark.parametrize(
    ("reply", "retryable"),
    [
        (TwilioReply.invalid_number(), False),
        (TwilioReply.rate_limited(), True),
        (TwilioReply.server_error(500), True),
        (TwilioReply.server_error(503), True),
    ],
)
def test_sms_failures_are_classified(
    twilio_server: FakeTwilioServer, reply: TwilioReply, retryable: bool
) -> None:
    twilio_server.script(reply)
    result = sms(twilio_server).send(make_message())

    assert not result.ok and result.status == "failed"
    assert result.retryable is retryable
    assert result.error is not None and str(reply.status) in result.error


def test_sms_invalid_number_keeps_twilio_code(twilio_server: FakeTwilioServer) -> None:
    twilio_server.script(TwilioReply.invalid_number())
    result = sms(twilio_server).send(make_message())
    assert result.error is not None and "21211" in result.error


def test_sms_bad_credentials_are_not_retryable(twilio_server: FakeTwilioServer) -> None:
    result = sms(twilio_server, auth_token="wrong").send(make_message())
    assert not result.ok and not result.retryable
    assert result.error is not None and "401" in result.error


def test_sms_connection_refused_is_retryable(
    twilio_server: FakeTwilioServer, closed_port: int
) -> None:
    client = twilio_server.client()
    client.api.base_url = f"http://127.0.0.1:{closed_port}"
    result = TwilioSmsChannel(client, FROM, None).send(make_message())
    assert not result.ok and result.retryable
    assert twilio_server.requests == []


def test_call_places_inline_twiml_with_machine_detection(twilio_server: FakeTwilioServer) -> None:
    message = make_message(notification_id="ntf/7")
    result = voice(twilio_server).send(message)

    assert result.ok and result.status == "queued"
    assert result.provider_id is not None and result.provider_id.startswith("CA")
    (request,) = twilio_server.requests
    assert request.resource == "Calls"
    assert request.param("To") == message.recipient
    assert request.param("MachineDetection") == "Enable"
    assert request.param("StatusCallback") == CALLBACK
    assert request.form["StatusCallbackEvent"] == ["initiated", "ringing", "answered", "completed"]
    twiml = ET.fromstring(request.param("Twiml") or "")
    gather = twiml.find("Gather")
    assert gather is not None
    assert gather.get("action") == "https://vigil.example/voice/ntf%2F7/keypress"


def test_call_server_error_is_retryable(twilio_server: FakeTwilioServer) -> None:
    twilio_server.script(TwilioReply.server_error())
    result = voice(twilio_server).send(make_message())
    assert not result.ok and result.retryable


def test_call_twiml_says_alert_then_gathers_one_digit() -> None:
    text = "[P0] payments <down> & failing"
    root = ET.fromstring(call_twiml(text, "https://vigil.example/voice/n1/keypress?x=1&y=2"))

    assert root.tag == "Response"
    first = root[0]
    assert first.tag == "Say" and first.text == text
    gather = root.find("Gather")
    assert gather is not None
    assert gather.get("numDigits") == "1"
    assert gather.get("action") == "https://vigil.example/voice/n1/keypress?x=1&y=2"
    assert gather.get("method") == "POST"
    prompt = gather.find("Say")
    assert prompt is not None and prompt.text == MENU_PROMPT
    assert "1 to acknowledge" in MENU_PROMPT and "3 to silence for 30 minutes" in MENU_PROMPT
    assert list(root).index(gather) > list(root).index(first)


@pytest.mark.parametrize(
    ("digit", "action"),
    [
        ("1", "acknowledge"),
        ("2", "resolve"),
        ("3", "silence_30m"),
        (" 1 ", "acknowledge"),
        ("4", None),
        ("0", None),
        ("*", None),
        ("", None),
        (None, None),
        ("12", None),
    ],
)
def test_keypress_action(digit: str | None, action: str | None) -> None:
    assert keypress_action(digit) == action


@pytest.mark.parametrize(
    ("answered_by", "human"),
    [
        ("human", True),
        ("machine_start", False),
        ("machine_end_beep", False),
        ("machine_end_silence", False),
        ("machine_end_other", False),
        ("fax", False),
        ("unknown", False),
        (None, False),
        ("", False),
    ],
)
def test_answered_by_human(answered_by: str | None, human: bool) -> None:
    assert answered_by_human(answered_by) is human
