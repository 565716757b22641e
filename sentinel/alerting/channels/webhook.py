"""Generic outgoing webhook: a signed JSON POST per notification."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import time
from collections.abc import Callable

import httpx

from sentinel.alerting.channels.base import DeliveryResult, Message, parse_retry_after

SIGNATURE_HEADER = "X-Vigil-Signature"
TIMESTAMP_HEADER = "X-Vigil-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"


def webhook_signature(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>`` over ``{timestamp}.{body}``: the timestamp is signed so a
    receiver can refuse replays."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_webhook(secret: str, timestamp: str, body: bytes, signature: str | None) -> bool:
    if not signature:
        return False
    return hmac.compare_digest(webhook_signature(secret, timestamp, body), signature)


def webhook_payload(message: Message) -> dict[str, object]:
    return dataclasses.asdict(message)


class WebhookChannel:
    name = "webhook"

    def __init__(
        self,
        http_client: httpx.Client,
        url: str,
        secret: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._http = http_client
        self._url = url
        self._secret = secret
        self._clock = clock

    def send(self, message: Message) -> DeliveryResult:
        # A page's recipient is a URL on the webhook channel; a failed-over SMS or
        # call keeps its phone number as the recipient, in the payload.
        url = (
            message.recipient
            if message.recipient.startswith(("http://", "https://"))
            else self._url
        )
        body = json.dumps(webhook_payload(message), separators=(",", ":")).encode()
        timestamp = str(int(self._clock()))
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: webhook_signature(self._secret, timestamp, body),
            TIMESTAMP_HEADER: timestamp,
            # Lets the receiver drop our retries of a request it already handled.
            IDEMPOTENCY_HEADER: message.notification_id,
        }
        try:
            response = self._http.post(url, content=body, headers=headers)
        except httpx.TimeoutException as exc:
            uncertain = not isinstance(exc, httpx.ConnectTimeout)
            return DeliveryResult.failure(
                f"webhook timeout: {exc!r}", retryable=True, uncertain=uncertain
            )
        except httpx.TransportError as exc:
            return DeliveryResult.failure(f"webhook unreachable: {exc!r}", retryable=True)
        status = response.status_code
        if status < 300:
            return DeliveryResult.success(response.headers.get("x-request-id"), status="sent")
        error = f"webhook {status}: {response.text[:200]}"
        if status == 429 or status >= 500:
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            return DeliveryResult.failure(error, retryable=True, retry_after=retry_after)
        # Other 4xx: the receiver rejected this payload and will reject it again.
        return DeliveryResult.failure(error, retryable=False)
