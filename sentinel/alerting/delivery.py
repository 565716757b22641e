"""The delivery channels a sentinel sends through, built from its settings.
A channel without credentials is the console outbox, so a fresh install still
shows (and keeps, in ``outbox_file``) every page it would have sent."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import replace
from typing import TextIO

import httpx

from common.clock import Clock
from common.logs import get_logger
from sentinel.alerting.channels.outbox_console import ConsoleChannel
from sentinel.alerting.channels.slack import SlackChannel
from sentinel.alerting.channels.twilio_sms import TwilioSmsChannel
from sentinel.alerting.channels.twilio_voice import TwilioVoiceChannel
from sentinel.alerting.channels.webhook import WebhookChannel
from sentinel.alerting.config import AlertingConfig
from sentinel.alerting.messages import MEDIUM_FIELDS, text_for
from sentinel.alerting.outbox import Dispatcher, Outgoing, Result, Send, via
from sentinel.alerting.reactions import Reactions
from sentinel.db import Database
from sentinel.settings import SentinelSettings

log = get_logger(__name__)

TWILIO_STATUS_PATH = "/api/twilio/status"
TWILIO_VOICE_PATH = "/api/twilio/voice"


def build_channels(
    settings: SentinelSettings, stream: TextIO | None = None
) -> tuple[dict[str, Send], dict[str, str]]:
    """The channels by name, and what each one really is (``console`` where
    credentials are missing), for the logs and the health check."""
    console = via(ConsoleChannel(stream or sys.stdout, settings.outbox_file))
    channels: dict[str, Send] = dict.fromkeys(
        ("sms", "voice", "slack", "webhook", "console"), console
    )
    kinds = dict.fromkeys(channels, "console")
    base = settings.public_url.rstrip("/")
    if settings.twilio_account_sid and settings.twilio_auth_token and settings.twilio_from_number:
        from twilio.rest import Client

        client = Client(settings.twilio_account_sid, settings.twilio_auth_token)
        if settings.twilio_base_url:
            client.api.base_url = settings.twilio_base_url.rstrip("/")
        status_url = base + TWILIO_STATUS_PATH
        channels["sms"] = via(TwilioSmsChannel(client, settings.twilio_from_number, status_url))
        channels["voice"] = via(
            TwilioVoiceChannel(
                client, settings.twilio_from_number, base + TWILIO_VOICE_PATH, status_url
            )
        )
        kinds["sms"], kinds["voice"] = "twilio_sms", "twilio_voice"
    if settings.slack_bot_token:
        from slack_sdk import WebClient

        kwargs = {"base_url": settings.slack_base_url} if settings.slack_base_url else {}
        web = WebClient(token=settings.slack_bot_token, timeout=10, **kwargs)
        channels["slack"] = via(SlackChannel(web, settings.slack_channel))
        kinds["slack"] = "slack"
    if settings.webhook_url and settings.webhook_secret:
        http = httpx.Client(timeout=10)
        channels["webhook"] = via(
            WebhookChannel(http, settings.webhook_url, settings.webhook_secret)
        )
        kinds["webhook"] = "webhook"
    for name in MEDIUM_FIELDS:
        channels[name] = in_its_words(name, channels[name])
    return channels, kinds


def in_its_words(name: str, send: Send) -> Send:
    """``send`` given the words written for channel ``name`` (a call's spoken
    line, Slack's whole evidence) instead of the SMS line; the console shows
    and keeps exactly what that channel would have sent."""

    def send_words(item: Outgoing) -> Result:
        text = text_for(name, item.payload)
        if text == item.payload.get("text"):
            return send(item)
        return send(replace(item, payload={**item.payload, "text": text}))

    return send_words


def build_dispatcher(
    settings: SentinelSettings, db: Database, alerting: AlertingConfig, clock: Clock
) -> tuple[Dispatcher, Reactions, dict[str, str]]:
    """The dispatcher over the configured channels, falling back per person
    through ``alerting``'s chains when a page fails."""
    channels, kinds = build_channels(settings)
    reactions = Reactions(alerting)
    log.info("sentinel.channels", channels=describe(kinds))
    dispatcher = Dispatcher(
        db, channels, clock, workers=settings.dispatcher_workers, on_failed=reactions.on_failed
    )
    return dispatcher, reactions, kinds


def describe(kinds: Mapping[str, str]) -> str:
    return ", ".join(f"{name}→{kind}" for name, kind in sorted(kinds.items()))
