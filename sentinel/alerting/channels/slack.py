"""Slack: one message per alert, updated in place as the alert changes state."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from sentinel.alerting.channels.base import DeliveryResult, Found, Message, parse_retry_after

METADATA_EVENT = "vigil_notification"
ACTION_ACKNOWLEDGE = "alert_acknowledge"
ACTION_RESOLVE = "alert_resolve"
ACTION_SILENCE = "alert_silence_30m"
_CLOSED_STATES = {"resolved", "cancelled"}
# Slack-side hiccups worth another attempt; anything else (invalid_auth, channel_not_found,
# msg_too_long...) would fail the same way again.
_RETRYABLE_ERRORS = {
    "ratelimited",
    "internal_error",
    "fatal_error",
    "service_unavailable",
    "request_timeout",
}
_SEVERITY_EMOJI = {
    "P0": ":red_circle:",
    "P1": ":large_orange_circle:",
    "P2": ":large_yellow_circle:",
}


def button_value(message: Message) -> str:
    """What a button click sends back: enough to find the notification and the alert."""
    return json.dumps(
        {"notification_id": message.notification_id, "fingerprint": message.fingerprint},
        separators=(",", ":"),
    )


def slack_blocks(message: Message) -> list[dict[str, Any]]:
    emoji = _SEVERITY_EMOJI.get(message.severity, ":white_circle:")
    if message.state in _CLOSED_STATES:
        emoji = ":white_check_mark:"
    blocks: list[dict[str, Any]] = [
        {
            "type": "section",
            "block_id": "alert_text",
            "text": {"type": "mrkdwn", "text": f"{emoji} *{message.subject}*\n{message.text}"},
        },
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": f"state: *{message.state}* | fingerprint: `{message.fingerprint}`",
                }
            ],
        },
    ]
    elements: list[dict[str, Any]] = []
    value = button_value(message)
    # A closed alert has nothing left to acknowledge; its links stay useful.
    if message.state not in _CLOSED_STATES:
        for action_id, label, style in (
            (ACTION_ACKNOWLEDGE, "Acknowledge", "primary"),
            (ACTION_RESOLVE, "Resolve", None),
            (ACTION_SILENCE, "Silence 30m", "danger"),
        ):
            button: dict[str, Any] = {
                "type": "button",
                "action_id": action_id,
                "text": {"type": "plain_text", "text": label},
                "value": value,
            }
            if style:
                button["style"] = style
            elements.append(button)
    for index, (label, url) in enumerate(message.links.items()):
        elements.append(
            {
                "type": "button",
                "action_id": f"alert_link_{index}",
                "text": {"type": "plain_text", "text": label},
                "url": url,
            }
        )
    if elements:
        blocks.append({"type": "actions", "block_id": "alert_actions", "elements": elements})
    return blocks


class SlackChannel:
    name = "slack"

    def __init__(self, web_client: WebClient, default_channel: str) -> None:
        self._client = web_client
        self._default_channel = default_channel

    def send(self, message: Message) -> DeliveryResult:
        channel = message.recipient or self._default_channel
        blocks = slack_blocks(message)
        # ``text`` is the notification/fallback text Slack shows where blocks are not rendered.
        fallback = f"{message.subject}: {message.text}"
        try:
            if message.slack_ts:
                try:
                    response = self._client.chat_update(
                        channel=channel, ts=message.slack_ts, text=fallback, blocks=blocks
                    )
                except SlackApiError as exc:
                    if _error_code(exc) != "message_not_found":
                        raise
                    # Deleted by someone: the alert still deserves a message.
                    response = self._client.chat_postMessage(
                        channel=channel, text=fallback, blocks=blocks
                    )
            else:
                response = self._client.chat_postMessage(
                    channel=channel, text=fallback, blocks=blocks, metadata=_metadata(message)
                )
        except SlackApiError as exc:
            return _from_api_error(exc)
        except (SlackClientError, OSError) as exc:
            # Connection refused/reset or timeout: try again (after a timeout Slack
            # may have posted it, which the retry's log says).
            uncertain = isinstance(exc, TimeoutError)
            return DeliveryResult.failure(
                f"slack unreachable: {exc}", retryable=True, uncertain=uncertain
            )
        return DeliveryResult.success(str(response.get("ts")), status="sent")

    def find(
        self, message: Message, provider_id: str | None, since: datetime | None
    ) -> list[Found] | None:
        """A recorded ``ts`` is a message Slack posted; without one, the
        channel's recent history is searched for the notification id this
        sentinel puts in each message's metadata. None where Slack cannot be
        asked (a direct message to a user id, a token without history scope)."""
        if provider_id:
            return [Found(provider_id, "posted", True)]
        channel = message.recipient or self._default_channel
        oldest = str((since - timedelta(minutes=5)).timestamp()) if since else None
        try:
            history = self._client.conversations_history(
                channel=channel, oldest=oldest, include_all_metadata=True, limit=200
            )
        except (SlackApiError, SlackClientError, OSError):
            return None
        for posted in history.get("messages") or []:
            payload = (posted.get("metadata") or {}).get("event_payload") or {}
            if payload.get("notification_id") == message.notification_id:
                return [Found(str(posted.get("ts")), "posted", True)]
        return []


def _metadata(message: Message) -> dict[str, Any]:
    """Carried by each posted message, so a page taken over from a dead
    dispatcher can be found in the channel's history instead of posted twice."""
    return {
        "event_type": METADATA_EVENT,
        "event_payload": {"notification_id": message.notification_id},
    }


def _error_code(exc: SlackApiError) -> str:
    data = exc.response.data if exc.response is not None else None
    if isinstance(data, Mapping):
        return str(data.get("error", "unknown_error"))
    return "unknown_error"


def _from_api_error(exc: SlackApiError) -> DeliveryResult:
    status = int(getattr(exc.response, "status_code", 0) or 0)
    code = _error_code(exc)
    if status == 429 or code == "ratelimited":
        headers = {k.lower(): v for k, v in (exc.response.headers or {}).items()}
        retry_after = headers.get("retry-after")
        if isinstance(retry_after, list):  # some slack_sdk paths wrap header values in lists
            retry_after = retry_after[0] if retry_after else None
        return DeliveryResult.failure(
            f"slack {status} {code}", retryable=True, retry_after=parse_retry_after(retry_after)
        )
    retryable = status >= 500 or code in _RETRYABLE_ERRORS
    return DeliveryResult.failure(f"slack {status} {code}", retryable=retryable)
