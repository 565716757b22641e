"""Sentinel settings that point the real twilio and slack_sdk clients at the fake servers."""

from __future__ import annotations

from typing import Any

from tests.fakes.slack_server import FakeSlackServer
from tests.fakes.twilio_server import FakeTwilioServer

FROM_NUMBER = "+15005550006"  # Twilio's magic test number


def provider_settings(twilio: FakeTwilioServer, slack: FakeSlackServer) -> dict[str, Any]:
    """Keyword arguments for ``SentinelSettings``: credentials and base URLs of the fakes."""
    return {
        "twilio_account_sid": twilio.account_sid,
        "twilio_auth_token": twilio.auth_token,
        "twilio_from_number": FROM_NUMBER,
        "twilio_base_url": twilio.base_url,
        "slack_bot_token": slack.token,
        "slack_base_url": slack.base_url,
    }
