"""SMS through Twilio's Messages API."""

from __future__ import annotations

from twilio.rest import Client

from sentinel.alerting.channels._twilio import twilio_call
from sentinel.alerting.channels.base import DeliveryResult, Message


class TwilioSmsChannel:
    name = "twilio_sms"

    def __init__(self, client: Client, from_number: str, status_callback_url: str | None) -> None:
        self._client = client
        self._from = from_number
        self._status_callback = status_callback_url

    def send(self, message: Message) -> DeliveryResult:
        kwargs: dict[str, str] = {}
        if self._status_callback:
            # Delivery receipts (delivered/undelivered) arrive later on this URL.
            kwargs["status_callback"] = self._status_callback
        return twilio_call(
            lambda: self._client.messages.create(
                to=message.recipient, from_=self._from, body=message.text, **kwargs
            )
        )
