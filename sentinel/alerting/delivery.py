"""The delivery channels a sentinel sends through, built from its settings.
A channel without credentials is the console outbox, so a fresh install still
shows (and keeps, in ``outbox_file``) every page it would have sent."""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import timedelta
from typing import TextIO, TypeVar

import httpx

from common.clock import Clock
from common.logs import get_logger
from sentinel.alerting.channels.outbox_console import ConsoleChannel
from sentinel.alerting.channels.slack import SlackChannel
from sentinel.alerting.channels.twilio_sms import TwilioSmsChannel
from sentinel.alerting.channels.twilio_voice import TwilioVoiceChannel
from sentinel.alerting.channels.webhook import WebhookChannel
from sentinel.alerting.config import AlertingConfig
from sentinel.alerting.dispatcher import Dispatcher, Failover
from sentinel.alerting.messages import MEDIUM_FIELDS, text_for
from sentinel.alerting.outbox import Find, Outgoing, RetryPolicy, Send, find_via, via
from sentinel.alerting.reactions import Reactions
from sentinel.db import Database
from sentinel.settings import SentinelSettings

log = get_logger(__name__)

T = TypeVar("T")

TWILIO_STATUS_PATH = "/api/twilio/status"
TWILIO_VOICE_PATH = "/api/twilio/voice"


def build_channels(
    settings: SentinelSettings, stream: TextIO | None = None
) -> tuple[dict[str, Send], dict[str, str]]:
    """The channels by name, and what each one really is (``console`` where
    credentials are missing), for the logs and the health check."""
    channels, _finders, kinds = build_routes(settings, stream)
    return channels, kinds


def build_routes(
    settings: SentinelSettings, stream: TextIO | None = None
) -> tuple[dict[str, Send], dict[str, Find], dict[str, str]]:
    """The channels, how to ask each provider whether a page already went out
    (where it can say), and what each channel really is. Every provider client
    is built with connect and read timeouts and without retries of its own:
    the dispatcher retries, with back-off, and no call can hang a page."""
    timeout = settings.provider_timeout_seconds
    console = via(ConsoleChannel(stream or sys.stdout, settings.outbox_file))
    channels: dict[str, Send] = dict.fromkeys(
        ("sms", "voice", "slack", "webhook", "console"), console
    )
    finders: dict[str, Find] = {}
    kinds = dict.fromkeys(channels, "console")
    base = settings.public_url.rstrip("/")
    if settings.twilio_account_sid and settings.twilio_auth_token and settings.twilio_from_number:
        from twilio.http.http_client import TwilioHttpClient
        from twilio.rest import Client

        # One float: requests applies it to the connect and to every read.
        client = Client(
            settings.twilio_account_sid,
            settings.twilio_auth_token,
            http_client=TwilioHttpClient(timeout=timeout),
        )
        if settings.twilio_base_url:
            client.api.base_url = settings.twilio_base_url.rstrip("/")
        status_url = base + TWILIO_STATUS_PATH
        sms = TwilioSmsChannel(client, settings.twilio_from_number, status_url)
        voice = TwilioVoiceChannel(
            client, settings.twilio_from_number, base + TWILIO_VOICE_PATH, status_url
        )
        channels["sms"], channels["voice"] = via(sms), via(voice)
        finders["sms"], finders["voice"] = find_via(sms), find_via(voice)  # type: ignore[assignment]
        kinds["sms"], kinds["voice"] = "twilio_sms", "twilio_voice"
    if settings.slack_bot_token:
        from slack_sdk import WebClient

        kwargs = {"base_url": settings.slack_base_url} if settings.slack_base_url else {}
        web = WebClient(
            token=settings.slack_bot_token,
            timeout=max(1, math.ceil(timeout)),
            retry_handlers=[],
            **kwargs,
        )
        slack = SlackChannel(web, settings.slack_channel)
        channels["slack"] = via(slack)
        finders["slack"] = find_via(slack)  # type: ignore[assignment]
        kinds["slack"] = "slack"
    if settings.webhook_url and settings.webhook_secret:
        http = httpx.Client(timeout=timeout)
        channels["webhook"] = via(
            WebhookChannel(http, settings.webhook_url, settings.webhook_secret)
        )
        kinds["webhook"] = "webhook"
    for name in MEDIUM_FIELDS:
        channels[name] = in_its_words(name, channels[name])
        if name in finders:
            finders[name] = in_its_words(name, finders[name])  # type: ignore[arg-type]
    return channels, finders, kinds


def build_failover(settings: SentinelSettings) -> Failover | None:
    """The second route for pages of a channel that has failed for a while."""
    if not (settings.failover_webhook_url and settings.failover_webhook_secret):
        return None
    http = httpx.Client(timeout=settings.provider_timeout_seconds)
    channel = WebhookChannel(http, settings.failover_webhook_url, settings.failover_webhook_secret)
    return Failover(
        send=via(channel),
        channels=frozenset(settings.failover_channels),
        after=timedelta(seconds=settings.failover_after_seconds),
        probe_every=timedelta(seconds=settings.failover_probe_seconds),
    )


def in_its_words(name: str, send: Callable[[Outgoing], T]) -> Callable[[Outgoing], T]:
    """``send`` given the words written for channel ``name`` (a call's spoken
    line, Slack's whole evidence) instead of the SMS line; the console shows
    and keeps exactly what that channel would have sent (and a lookup matches
    exactly what was sent)."""

    def send_words(item: Outgoing) -> T:
        text = text_for(name, item.payload)
        if text == item.payload.get("text"):
            return send(item)
        return send(replace(item, payload={**item.payload, "text": text}))

    return send_words


def build_dispatcher(
    settings: SentinelSettings,
    db: Database,
    alerting: AlertingConfig,
    clock: Clock,
    outbox_stream: TextIO | None = None,
) -> tuple[Dispatcher, Reactions, dict[str, str]]:
    """The dispatcher over the configured channels, falling back per person
    through ``alerting``'s chains when a page fails. ``outbox_stream``: where the
    console outbox prints (default stdout)."""
    channels, finders, kinds = build_routes(settings, outbox_stream)
    reactions = Reactions(alerting)
    failover = build_failover(settings)
    if failover is not None:
        kinds["failover"] = "webhook"
    log.info("sentinel.channels", channels=describe(kinds))
    dispatcher = Dispatcher(
        db,
        channels,
        clock,
        RetryPolicy(
            max_attempts=settings.delivery_max_attempts,
            backoff_seconds=settings.delivery_backoff_seconds,
            max_backoff_seconds=settings.delivery_max_backoff_seconds,
        ),
        lease=timedelta(seconds=settings.delivery_lease_seconds),
        workers=settings.dispatcher_workers,
        on_failed=reactions.on_failed,
        on_stalled=reactions.on_stalled,
        finders=finders,
        failover=failover,
        send_deadline=timedelta(seconds=settings.delivery_send_deadline_seconds),
    )
    return dispatcher, reactions, kinds


def describe(kinds: Mapping[str, str]) -> str:
    return ", ".join(f"{name}→{kind}" for name, kind in sorted(kinds.items()))
