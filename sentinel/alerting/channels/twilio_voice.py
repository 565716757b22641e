"""Phone calls through Twilio's Calls API, with a keypress menu to act on the alert."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal
from urllib.parse import quote

from twilio.rest import Client
from twilio.twiml.voice_response import Gather, VoiceResponse

from sentinel.alerting.channels._twilio import twilio_call
from sentinel.alerting.channels.base import DeliveryResult, Found, Message

KeypressAction = Literal["acknowledge", "resolve", "silence_30m"]

MENU_PROMPT = "Press 1 to acknowledge, 2 to resolve, 3 to silence for 30 minutes."
_KEYPRESSES: dict[str, KeypressAction] = {"1": "acknowledge", "2": "resolve", "3": "silence_30m"}
# Twilio's CallStatus values for a call that never rang (busy and no-answer did ring).
NOT_PLACED = {"failed", "canceled"}
# Everything after "answered" is what escalation needs: completed + AnsweredBy, busy, no-answer.
STATUS_CALLBACK_EVENTS = ["initiated", "ringing", "answered", "completed"]


def call_twiml(alert_text: str, gather_action_url: str) -> str:
    """Read the alert, then offer the menu; the keypress is POSTed to ``gather_action_url``."""
    response = VoiceResponse()
    response.say(alert_text)
    gather = Gather(num_digits=1, action=gather_action_url, method="POST", timeout=10)
    gather.say(MENU_PROMPT)
    response.append(gather)
    # Reached only when no key was pressed: the call then counts as not acknowledged.
    response.say("No input received. Goodbye.")
    return str(response)


def keypress_action(digit: str | None) -> KeypressAction | None:
    return _KEYPRESSES.get((digit or "").strip())


def answered_by_human(answered_by: str | None) -> bool:
    """Only an explicit ``human`` counts: voicemail, fax and ``unknown`` keep escalating."""
    return answered_by == "human"


class TwilioVoiceChannel:
    name = "twilio_voice"

    def __init__(
        self,
        client: Client,
        from_number: str,
        answer_url_base: str,
        status_callback_url: str | None,
    ) -> None:
        self._client = client
        self._from = from_number
        self._answer_url_base = answer_url_base.rstrip("/")
        self._status_callback = status_callback_url

    def gather_action_url(self, notification_id: str) -> str:
        return f"{self._answer_url_base}/{quote(notification_id, safe='')}/keypress"

    def send(self, message: Message) -> DeliveryResult:
        # Inline TwiML: the call can read the alert even if our web app is down when it's answered.
        twiml = call_twiml(message.text, self.gather_action_url(message.notification_id))
        kwargs: dict[str, object] = {}
        if self._status_callback:
            kwargs["status_callback"] = self._status_callback
            kwargs["status_callback_event"] = STATUS_CALLBACK_EVENTS
        return twilio_call(
            lambda: self._client.calls.create(
                to=message.recipient,
                from_=self._from,
                twiml=twiml,
                machine_detection="Enable",
                **kwargs,  # type: ignore[arg-type]
            )
        )

    def find(
        self, message: Message, provider_id: str | None, since: datetime | None
    ) -> list[Found]:
        """Did Twilio place this call? By its sid when it was recorded, else
        among recent calls to the same number (newest first; the dispatcher
        skips calls another page already owns)."""
        if provider_id:
            found = self._client.calls(provider_id).fetch()
            return [Found(str(found.sid), str(found.status), str(found.status) not in NOT_PLACED)]
        kwargs: dict[str, object] = {"to": message.recipient, "from_": self._from, "limit": 100}
        if since is not None:
            kwargs["start_time_after"] = since - timedelta(minutes=5)
        recent = self._client.calls.list(**kwargs)  # type: ignore[arg-type]
        return [Found(str(c.sid), str(c.status), str(c.status) not in NOT_PLACED) for c in recent]
