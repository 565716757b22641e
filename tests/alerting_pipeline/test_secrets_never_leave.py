"""The sentinel holds a Twilio auth token, a Slack bot token and signing
secret, an API token and a webhook secret. Providers that echo our
credentials in their error bodies, forged and replayed callbacks, a bad API
token: afterwards no log line, API response or outbox line contains any of
them."""

from __future__ import annotations

import io
import json
from pathlib import Path
from urllib.parse import urlencode

from fastapi.testclient import TestClient

from common.clock import FakeClock
from common.logs import configure_logging
from common.yaml_config import parse_yaml_model
from sentinel.alerting.channels.signatures import TWILIO_SIGNATURE_HEADER, sign_slack, sign_twilio
from sentinel.api import create_app
from sentinel.catalogue import Catalogue
from sentinel.models import AlertState
from sentinel.service import build_sentinel
from sentinel.settings import SentinelSettings
from tests.alerting_pipeline.conftest import CONFIG, set_state
from tests.fakes.providers import provider_settings
from tests.fakes.slack_server import FakeSlackServer, SlackReply
from tests.fakes.twilio_server import FakeTwilioServer, TwilioReply

PUBLIC = "https://sentinel.example.com"
SECRETS = {
    "twilio_auth_token": "tw-SECRET-auth-token-5f1c2e",
    "slack_bot_token": "xoxb-SECRET-bot-token-77aa",
    "slack_signing_secret": "SECRET-slack-signing-0c9d",
    "api_token": "SECRET-sentinel-api-token-31",
    "webhook_secret": "SECRET-webhook-hmac-key-8e",
}


def test_no_sentinel_secret_reaches_logs_api_or_outbox(
    sentinel_url, database_url, tmp_path: Path, monkeypatch, restore_logging
):
    monkeypatch.delenv("TWILIO_REGION", raising=False)
    monkeypatch.delenv("TWILIO_EDGE", raising=False)
    logs = io.StringIO()
    configure_logging("DEBUG", stream=logs)
    config = tmp_path / "alerting.yaml"
    config.write_text(CONFIG)
    outbox = tmp_path / "outbox.jsonl"
    clock = FakeClock()
    echo = f"Authenticate failed for token {SECRETS['twilio_auth_token']}"
    responses: list[str] = []
    with (
        FakeTwilioServer(
            auth_token=SECRETS["twilio_auth_token"],
            default=TwilioReply.error(500, 20500, echo),
        ) as twilio,
        FakeSlackServer(
            token=SECRETS["slack_bot_token"],
            default=SlackReply.error(f"invalid_auth:{SECRETS['slack_bot_token']}"),
        ) as slack,
    ):
        settings = SentinelSettings(
            database_url=sentinel_url,
            translator_database_url=database_url,
            alerting=config,
            public_url=PUBLIC,
            outbox_file=outbox,
            **provider_settings(twilio, slack),
            **{
                k: v
                for k, v in SECRETS.items()
                if k not in ("twilio_auth_token", "slack_bot_token")
            },
        )
        sentinel = build_sentinel(
            settings,
            clock=clock,
            catalogue=parse_yaml_model("signals: []", Catalogue),
            migrate=False,
        )
        try:
            with TestClient(create_app(sentinel, run_loop=False)) as http:
                set_state(
                    sentinel.db,
                    clock.now(),
                    "payments.failed",
                    "P1",
                    AlertState.firing,
                    {"service": "translator"},
                )
                for _ in range(4):  # pages fail, are retried, fall back
                    clock.advance(seconds=60)
                    sentinel.notifier.run_once()
                    sentinel.deliver()
                group_id = http.get("/api/groups").json()[0]["id"]
                detail = http.get(f"/api/groups/{group_id}")
                assert any(n["last_error"] for n in detail.json()["notifications"])

                # A forged keypress, a genuine one and its replay, a stale Slack press.
                path = "/api/twilio/voice/whatever/keypress"
                press = {"CallSid": "CA1", "Digits": "1"}
                signed = sign_twilio(SECRETS["twilio_auth_token"], PUBLIC + path, press)
                form = {"Content-Type": "application/x-www-form-urlencoded"}
                for signature in ("forged", signed, signed):
                    r = http.post(
                        path,
                        content=urlencode(press),
                        headers={**form, TWILIO_SIGNATURE_HEADER: signature},
                    )
                    responses.append(r.text)
                body = urlencode({"payload": json.dumps({"actions": []})}).encode()
                stale = sign_slack(SECRETS["slack_signing_secret"], body, 1)
                responses.append(
                    http.post(
                        "/api/slack/interactions", content=body, headers={**form, **stale}
                    ).text
                )
                bad_token = http.post(
                    "/api/silences",
                    json={
                        "matchers": ['a="b"'],
                        "duration_minutes": 5,
                        "created_by": "x",
                        "comment": "c",
                    },
                    headers={"Authorization": "Bearer wrong"},
                )
                assert bad_token.status_code in (401, 403)
                responses.append(bad_token.text)
                for url in ("/api/groups", f"/api/groups/{group_id}", "/api/alerts", "/api/health"):
                    responses.append(http.get(url).text)
        finally:
            sentinel.close()
    assert twilio.requests and slack.requests  # the secrets were used where they belong

    captured = {"logs": logs.getvalue(), "API": "\n".join(responses)}
    captured["outbox"] = outbox.read_text() if outbox.exists() else ""
    assert "notification.attempt" in captured["logs"]
    for where, text in captured.items():
        for name, secret in SECRETS.items():
            assert secret not in text, f"{name} found in {where}"
