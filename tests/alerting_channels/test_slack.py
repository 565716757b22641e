from __future__ import annotations

import json

from slack_sdk import WebClient

from sentinel.alerting.channels.slack import (
    ACTION_ACKNOWLEDGE,
    ACTION_RESOLVE,
    ACTION_SILENCE,
    SlackChannel,
    slack_blocks,
)
from tests.alerting_channels.conftest import make_message
from tests.fakes.slack_server import FakeSlackServer, SlackReply


def channel(server: FakeSlackServer, token: str | None = None) -> SlackChannel:
    return SlackChannel(server.client(token), "#alerts")


def test_post_message_with_blocks(slack_server: FakeSlackServer) -> None:
    message = make_message(recipient="#payments")
    result = channel(slack_server).send(message)

    assert result.ok and result.status == "sent"
    assert result.provider_id == "1700000000.000100"
    (request,) = slack_server.requests
    assert request.method == "chat.postMessage"
    assert request.headers["authorization"] == "Bearer xoxb-fake-token"
    assert request.params["channel"] == "#payments"
    assert message.text in request.params["text"]
    assert request.params["blocks"] == slack_blocks(message)


def test_empty_recipient_uses_default_channel(slack_server: FakeSlackServer) -> None:
    channel(slack_server).send(make_message(recipient=""))
    assert slack_server.requests[0].params["channel"] == "#alerts"


def test_state_change_updates_the_same_message(slack_server: FakeSlackServer) -> None:
    slack = channel(slack_server)
    first = slack.send(make_message(recipient="#payments"))
    assert first.provider_id is not None

    resolved = make_message(recipient="#payments", state="resolved", slack_ts=first.provider_id)
    second = slack.send(resolved)

    assert second.ok and second.provider_id == first.provider_id
    update = slack_server.requests[1]
    assert update.method == "chat.update"
    assert update.params["ts"] == first.provider_id
    assert update.params["channel"] == "#payments"
    # A resolved alert has no buttons left to press.
    assert not any(b["type"] == "actions" for b in update.params["blocks"])


def test_update_of_deleted_message_posts_a_new_one(slack_server: FakeSlackServer) -> None:
    slack_server.script(SlackReply.error("message_not_found"))
    result = channel(slack_server).send(make_message(slack_ts="1699999999.000100"))

    assert result.ok and result.provider_id == "1700000000.000100"
    assert [r.method for r in slack_server.requests] == ["chat.update", "chat.postMessage"]


def test_rate_limit_is_retryable_with_retry_after(slack_server: FakeSlackServer) -> None:
    slack_server.script(SlackReply.rate_limited("17"))
    result = channel(slack_server).send(make_message())

    assert not result.ok and result.retryable
    assert result.retry_after == 17.0
    assert len(slack_server.requests) == 1  # the SDK did not retry on its own


def test_rate_limit_on_update_is_retryable(slack_server: FakeSlackServer) -> None:
    slack_server.script(SlackReply.rate_limited("3"))
    result = channel(slack_server).send(make_message(slack_ts="1700000000.000100"))
    assert result.retryable and result.retry_after == 3.0


def test_invalid_auth_is_not_retryable(slack_server: FakeSlackServer) -> None:
    result = channel(slack_server, token="xoxb-wrong").send(make_message())
    assert not result.ok and not result.retryable
    assert result.error is not None and "invalid_auth" in result.error


def test_channel_not_found_is_not_retryable(slack_server: FakeSlackServer) -> None:
    slack_server.script(SlackReply.error("channel_not_found"))
    result = channel(slack_server).send(make_message())
    assert not result.retryable and result.retry_after is None


def test_server_error_is_retryable(slack_server: FakeSlackServer) -> None:
    slack_server.script(SlackReply.server_error(503))
    result = channel(slack_server).send(make_message())
    assert not result.ok and result.retryable


def test_connection_refused_is_retryable(closed_port: int) -> None:
    client = WebClient(token="x", base_url=f"http://127.0.0.1:{closed_port}/", retry_handlers=[])
    result = SlackChannel(client, "#alerts").send(make_message())
    assert not result.ok and result.retryable


def test_blocks_carry_buttons_with_ids_and_values() -> None:
    message = make_message(links={"Runbook": "https://runbooks.example/checkout"})
    blocks = slack_blocks(message)

    section = blocks[0]
    assert section["type"] == "section"
    assert message.text in section["text"]["text"]
    (actions,) = [b for b in blocks if b["type"] == "actions"]
    buttons = {e["action_id"]: e for e in actions["elements"]}
    for action_id in (ACTION_ACKNOWLEDGE, ACTION_RESOLVE, ACTION_SILENCE):
        value = json.loads(buttons[action_id]["value"])
        assert value == {"notification_id": "ntf-1", "fingerprint": "fp-abc"}
    links = [e for e in actions["elements"] if "url" in e]
    assert links == [
        {
            "type": "button",
            "action_id": "alert_link_0",
            "text": {"type": "plain_text", "text": "Runbook"},
            "url": "https://runbooks.example/checkout",
        }
    ]
    json.dumps(blocks)  # serialisable as-is
