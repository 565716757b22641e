"""SMS through Twilio's Messages API."""

from __future__ import annotations

from datetime import datetime, timedelta

from twilio.rest import Client

from sentinel.alerting.channels._twilio import twilio_call
from sentinel.alerting.channels.base import DeliveryResult, Found, Message

# Twilio's MessageStatus values for a message that never reached the handset.
NOT_SENT = {"failed", "undelivered", "canceled"}


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

    def find(
        self, message: Message, provider_id: str | None, since: datetime | None
    ) -> list[Found]:
        """Did Twilio get this message? By its sid when it was recorded, else
        among recent messages to the same number with the same body."""
        if provider_id:
            found = self._client.messages(provider_id).fetch()
            return [Found(str(found.sid), str(found.status), str(found.status) not in NOT_SENT)]
        kwargs: dict[str, object] = {"to": message.recipient, "from_": self._from, "limit": 100}
        if since is not None:
            kwargs["date_sent_after"] = since - timedelta(minutes=5)  # clocks differ
        recent = self._client.messages.list(**kwargs)  # type: ignore[arg-type]
        return [
            Found(str(m.sid), str(m.status), str(m.status) not in NOT_SENT)
            for m in recent
            if m.body == message.text
        ]
