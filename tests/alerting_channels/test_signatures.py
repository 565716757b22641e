from __future__ import annotations

import pytest

from sentinel.alerting.channels.signatures import (
    SLACK_SIGNATURE_HEADER,
    SLACK_TIMESTAMP_HEADER,
    sign_slack,
    sign_twilio,
    verify_slack,
    verify_twilio,
)

TOKEN = "twilio-auth-token"
URL = "https://vigil.example/twilio/voice/ntf-1/keypress?attempt=2"
PARAMS = {"CallSid": "CA123", "Digits": "1", "From": "+15005550006", "AnsweredBy": "human"}
SECRET = "slack-signing-secret"
BODY = b"payload=%7B%22type%22%3A%22block_actions%22%7D"
NOW = 1_700_000_000.0


def test_twilio_valid_signature_passes() -> None:
    assert verify_twilio(TOKEN, URL, PARAMS, sign_twilio(TOKEN, URL, PARAMS))


def test_twilio_port_variants_accepted_like_the_sdk() -> None:
    signature = sign_twilio(TOKEN, "https://vigil.example:443/cb", PARAMS)
    assert verify_twilio(TOKEN, "https://vigil.example/cb", PARAMS, signature)


@pytest.mark.parametrize(
    ("token", "url", "params"),
    [
        ("other-token", URL, PARAMS),
        (TOKEN, URL.replace("attempt=2", "attempt=3"), PARAMS),
        (TOKEN, URL, {**PARAMS, "Digits": "2"}),
        (TOKEN, URL, {**PARAMS, "Extra": "x"}),
    ],
)
def test_twilio_forged_or_modified_fails(token: str, url: str, params: dict[str, str]) -> None:
    signature = sign_twilio(TOKEN, URL, PARAMS)
    assert not verify_twilio(token, url, params, signature)


@pytest.mark.parametrize("signature", [None, "", "bm90IGEgc2lnbmF0dXJl"])
def test_twilio_missing_or_garbage_signature_fails(signature: str | None) -> None:
    assert not verify_twilio(TOKEN, URL, PARAMS, signature)


def test_slack_valid_signature_passes() -> None:
    headers = sign_slack(SECRET, BODY, int(NOW))
    assert verify_slack(SECRET, BODY, headers, now=NOW)
    lowered = {k.lower(): v for k, v in headers.items()}
    assert verify_slack(SECRET, BODY, lowered, now=NOW + 299)


def test_slack_replay_older_than_five_minutes_fails() -> None:
    headers = sign_slack(SECRET, BODY, int(NOW))
    assert not verify_slack(SECRET, BODY, headers, now=NOW + 301)
    assert not verify_slack(SECRET, BODY, headers, now=NOW - 301)  # from the future


def test_slack_modified_body_or_wrong_secret_fails() -> None:
    headers = sign_slack(SECRET, BODY, int(NOW))
    assert not verify_slack(SECRET, BODY + b"x", headers, now=NOW)
    assert not verify_slack("other-secret", BODY, headers, now=NOW)


def test_slack_moved_timestamp_fails() -> None:
    headers = sign_slack(SECRET, BODY, int(NOW))
    headers[SLACK_TIMESTAMP_HEADER] = str(int(NOW) + 1)
    assert not verify_slack(SECRET, BODY, headers, now=NOW)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {SLACK_TIMESTAMP_HEADER: str(int(NOW))},
        {SLACK_SIGNATURE_HEADER: "v0=abc"},
        {SLACK_TIMESTAMP_HEADER: "not-a-number", SLACK_SIGNATURE_HEADER: "v0=abc"},
    ],
)
def test_slack_missing_headers_fail(headers: dict[str, str]) -> None:
    assert not verify_slack(SECRET, BODY, headers, now=NOW)
