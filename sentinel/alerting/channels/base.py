"""What a channel is given and what it reports back.

A channel never raises for a provider failure: the caller (the outbox) needs to
know whether to try again, so failures come back as a ``DeliveryResult``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

from common.secrets import redact

DeliveryStatus = Literal["queued", "sent", "failed"]


@dataclass(frozen=True)
class Message:
    """One notification to one recipient."""

    notification_id: str  # idempotency key: the same id is never delivered twice
    recipient: str  # phone number, Slack channel or URL, depending on the channel
    subject: str
    text: str  # the words for this channel's medium (sentinel.alerting.messages)
    fingerprint: str
    severity: str
    state: str
    slack_ts: str | None = None  # an earlier Slack message to update in place
    links: dict[str, str] = field(default_factory=dict)  # label -> URL (ack/resolve pages)


@dataclass(frozen=True)
class DeliveryResult:
    ok: bool
    retryable: bool = False
    provider_id: str | None = None  # Twilio SID, Slack ts
    retry_after: float | None = None  # seconds, when the provider said so
    error: str | None = None
    status: DeliveryStatus = "sent"
    # We never heard back (a read timeout, a connection cut mid-answer): the
    # provider may have it, so the retry asks it before sending again.
    uncertain: bool = False

    @classmethod
    def success(cls, provider_id: str | None, status: DeliveryStatus = "sent") -> DeliveryResult:
        return cls(ok=True, provider_id=provider_id, status=status)

    @classmethod
    def failure(
        cls,
        error: str,
        *,
        retryable: bool,
        retry_after: float | None = None,
        uncertain: bool = False,
    ) -> DeliveryResult:
        # Stored and shown with the notification: a provider may have echoed our credentials.
        return cls(
            ok=False,
            retryable=retryable,
            retry_after=retry_after,
            error=redact(error)[:500],
            status="failed",
            uncertain=uncertain,
        )


@dataclass(frozen=True)
class Found:
    """A message the provider already has (asked by id, or found among recent ones)."""

    provider_id: str
    status: str  # the provider's own word: queued, sent, delivered, failed...
    went_out: bool  # False: the provider has it but it failed, so it must be sent again


class Channel(Protocol):
    name: str

    def send(self, message: Message) -> DeliveryResult: ...


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header; HTTP dates are rare enough to ignore."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return max(seconds, 0.0)
