"""Verifying inbound callbacks (Twilio status/keypress, Slack interactivity) with the SDKs'
own helpers, plus signing helpers so tests can forge valid requests."""

from __future__ import annotations

from collections.abc import Mapping

from slack_sdk.signature import Clock, SignatureVerifier
from twilio.request_validator import RequestValidator

TWILIO_SIGNATURE_HEADER = "X-Twilio-Signature"
SLACK_SIGNATURE_HEADER = "X-Slack-Signature"
SLACK_TIMESTAMP_HEADER = "X-Slack-Request-Timestamp"


class _FixedClock(Clock):
    """SignatureVerifier reads the time from a Clock; pinning it makes the replay window
    testable and lets callers use their own clock."""

    def __init__(self, now: float) -> None:
        self._now = now

    def now(self) -> float:
        return self._now


def verify_twilio(
    auth_token: str, url: str, params: Mapping[str, str], signature: str | None
) -> bool:
    """``url`` must be exactly what Twilio requested, query string included."""
    if not signature:
        return False
    return bool(RequestValidator(auth_token).validate(url, dict(params), signature))


def sign_twilio(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    return str(RequestValidator(auth_token).compute_signature(url, dict(params)))


def verify_slack(signing_secret: str, body: bytes, headers: Mapping[str, str], now: float) -> bool:
    """Slack rejects timestamps more than 5 minutes from ``now`` (replay protection)."""
    verifier = SignatureVerifier(signing_secret, clock=_FixedClock(now))
    normalized = {k.lower(): v for k, v in headers.items()}
    timestamp = normalized.get(SLACK_TIMESTAMP_HEADER.lower())
    if timestamp is None or not timestamp.strip().lstrip("-").isdigit():
        return False  # SignatureVerifier would raise on int(); a garbage header is just invalid
    return verifier.is_valid_request(body, normalized)


def sign_slack(signing_secret: str, body: bytes, timestamp: int | str) -> dict[str, str]:
    """The two headers Slack would send with ``body``."""
    ts = str(timestamp)
    signature = SignatureVerifier(signing_secret).generate_signature(timestamp=ts, body=body)
    return {SLACK_TIMESTAMP_HEADER: ts, SLACK_SIGNATURE_HEADER: str(signature)}
