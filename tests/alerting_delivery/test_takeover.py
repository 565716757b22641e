"""A dead dispatcher's page is settled, not blindly sent again: the page it
left in ``sending`` is looked up at Twilio (the real client against the fake,
by sid, or among recent messages to the number) before any resend."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest
from sqlalchemy import select

from sentinel.alerting.channels.outbox_console import ConsoleChannel
from sentinel.alerting.channels.twilio_sms import TwilioSmsChannel
from sentinel.alerting.channels.twilio_voice import TwilioVoiceChannel
from sentinel.alerting.dispatcher import Dispatcher
from sentinel.alerting.outbox import claim, enqueue, find_via, message_of, via
from sentinel.db import Database
from sentinel.models import DeliveryAttempt, Notification, NotificationStatus
from tests.alerting_channels.conftest import make_message
from tests.fakes.twilio_server import FakeTwilioServer, TwilioReply

FROM = "+15005550006"
ALICE = "+15550000001"
LEASE = timedelta(seconds=9)


@pytest.fixture
def db(sentinel_url: str) -> Database:
    database = Database(sentinel_url)
    yield database
    database.dispose()


def _sms(server: FakeTwilioServer) -> TwilioSmsChannel:
    return TwilioSmsChannel(server.client(), FROM, None)


def _dispatcher(db, clock, channel) -> Dispatcher:  # type: ignore[no-untyped-def]
    name = "voice" if isinstance(channel, TwilioVoiceChannel) else "sms"
    return Dispatcher(db, {name: via(channel)}, clock, finders={name: find_via(channel)})


def _page(
    db, clock, key="g1:s0:alice:sms", text="[P1] payments.failed 6, expected 0-1", channel="sms"
):  # type: ignore[no-untyped-def]
    with db.session() as s:
        enqueue(s, key, channel, ALICE, {"text": text, "state": "firing"}, clock.now())


def _dies_after_twilio_accepted(db, clock, channel, record_sid: bool = False):  # type: ignore[no-untyped-def]
    """A dispatcher claims the page, Twilio accepts it, and the dispatcher dies
    before (or, with ``record_sid``, just after) recording the sid."""
    (item,) = claim(db, clock.now(), LEASE, 10)
    result = channel.send(message_of(item))
    assert result.ok
    if record_sid:
        with db.session() as s:
            s.get(Notification, item.id).provider_id = result.provider_id
    clock.advance(LEASE + timedelta(seconds=1))  # its lease runs out: no heartbeat
    return result.provider_id


def _row(db) -> Notification:  # type: ignore[no-untyped-def]
    with db.session() as s:
        return s.scalars(select(Notification)).one()


def _attempts(db) -> list[DeliveryAttempt]:  # type: ignore[no-untyped-def]
    with db.session() as s:
        return list(s.scalars(select(DeliveryAttempt).order_by(DeliveryAttempt.id)))


def test_a_page_twilio_already_has_is_found_among_recent_messages_and_not_resent(
    db, clock, twilio_server
):
    channel = _sms(twilio_server)
    earlier = make_message(recipient=ALICE, text="[P2] queue.lag 700 s")
    assert channel.send(earlier).ok  # another message to alice, already at Twilio
    _page(db, clock)
    sid = _dies_after_twilio_accepted(db, clock, channel)
    dispatcher = _dispatcher(db, clock, channel)
    dispatcher.drain()
    created = twilio_server.created("Messages")
    assert [m["body"] for m in created].count("[P1] payments.failed 6, expected 0-1") == 1
    with db.session() as s:
        row = s.scalar(select(Notification).where(Notification.key == "g1:s0:alice:sms"))
        assert row.status is NotificationStatus.sent and row.provider_id == sid
    assert [(a.source, a.ok) for a in _attempts(db)][0] == ("lookup", True)


def test_a_recorded_sid_is_fetched(db, clock, twilio_server):
    channel = _sms(twilio_server)
    _page(db, clock)
    sid = _dies_after_twilio_accepted(db, clock, channel, record_sid=True)
    _dispatcher(db, clock, channel).drain()
    assert len(twilio_server.created("Messages")) == 1
    row = _row(db)
    assert row.status is NotificationStatus.sent and row.provider_id == sid


def test_a_page_twilio_never_got_is_sent_once(db, clock, twilio_server):
    channel = _sms(twilio_server)
    _page(db, clock)
    (item,) = claim(db, clock.now(), LEASE, 10)  # died before calling Twilio at all
    clock.advance(LEASE + timedelta(seconds=1))
    _dispatcher(db, clock, channel).drain()
    assert len(twilio_server.created("Messages")) == 1
    assert _row(db).status is NotificationStatus.sent
    assert [a.source for a in _attempts(db)] == ["send"]  # a fresh send, not a possible duplicate


def test_a_message_that_failed_at_twilio_is_sent_again(db, clock, twilio_server):
    channel = _sms(twilio_server)
    _page(db, clock)
    sid = _dies_after_twilio_accepted(db, clock, channel)
    twilio_server.resources[sid]["status"] = "undelivered"
    _dispatcher(db, clock, channel).drain()
    assert len(twilio_server.created("Messages")) == 2
    assert _row(db).provider_id != sid


def test_while_twilio_cannot_be_asked_the_page_waits_instead_of_risking_a_duplicate(
    db, clock, twilio_server, closed_port
):
    channel = _sms(twilio_server)
    _page(db, clock)
    _dies_after_twilio_accepted(db, clock, channel)
    unreachable = TwilioSmsChannel(FakeTwilioServer().client(), FROM, None)  # never started
    unreachable._client.api.base_url = f"http://127.0.0.1:{closed_port}"
    _dispatcher(db, clock, unreachable).drain()
    row = _row(db)
    assert row.status is NotificationStatus.pending and row.taken_over is True
    assert "could not ask sms" in row.last_error
    clock.advance(seconds=5)
    _dispatcher(db, clock, channel).drain()  # Twilio answers again
    assert len(twilio_server.created("Messages")) == 1
    assert _row(db).status is NotificationStatus.sent


def test_a_call_is_found_unless_another_page_owns_it(db, clock, twilio_server):
    voice = TwilioVoiceChannel(twilio_server.client(), FROM, "http://sentinel/voice", None)
    _page(db, clock, key="call-1", channel="voice")
    first = _dies_after_twilio_accepted(db, clock, voice)
    _dispatcher(db, clock, voice).drain()
    assert _row(db).provider_id == first and len(twilio_server.created("Calls")) == 1
    # A second page to the same number dies the same way: the earlier call is
    # the first page's, so this one is placed afresh rather than settled on it.
    _page(db, clock, key="call-2", channel="voice")
    (item,) = claim(db, clock.now(), LEASE, 10)
    clock.advance(LEASE + timedelta(seconds=1))
    _dispatcher(db, clock, voice).drain()
    with db.session() as s:
        second = s.scalar(select(Notification).where(Notification.key == "call-2"))
        assert second.status is NotificationStatus.sent and second.provider_id != first
    assert len(twilio_server.created("Calls")) == 2


def test_a_channel_that_cannot_be_asked_resends_and_says_it_may_be_a_duplicate(
    db, clock, tmp_path, caplog
):
    import io

    console = ConsoleChannel(io.StringIO(), tmp_path / "outbox.jsonl")
    _page(db, clock, channel="console")
    claim(db, clock.now(), LEASE, 10)
    clock.advance(LEASE + timedelta(seconds=1))
    with caplog.at_level(logging.WARNING):
        Dispatcher(db, {"console": via(console)}, clock).drain()
    (attempt,) = _attempts(db)
    assert attempt.ok and "may be a duplicate" in attempt.error
    assert any("notification.possible_duplicate" in r.getMessage() for r in caplog.records)
    assert len((tmp_path / "outbox.jsonl").read_text().splitlines()) == 1
    json.loads((tmp_path / "outbox.jsonl").read_text())


def test_a_late_answer_is_a_page_handed_back_and_settled_by_lookup(db, clock, twilio_server):
    """A Twilio that accepts the message but answers after the client's read
    timeout: the send counts as failed, and the retry finds the message."""
    from twilio.http.http_client import TwilioHttpClient
    from twilio.rest import Client

    client = Client(
        twilio_server.account_sid,
        twilio_server.auth_token,
        http_client=TwilioHttpClient(timeout=0.5),
    )
    client.api.base_url = twilio_server.base_url
    channel = TwilioSmsChannel(client, FROM, None)
    twilio_server.script(TwilioReply(delay=2.0))
    _page(db, clock)
    dispatcher = _dispatcher(db, clock, channel)
    dispatcher.drain()
    row = _row(db)
    assert row.status is NotificationStatus.pending and "unreachable" in row.last_error
    assert len(twilio_server.created("Messages")) == 1  # it went through, late
    clock.advance(seconds=3)
    dispatcher.drain()
    # A timed-out send may have gone through: the retry asks Twilio and
    # settles on the message it finds.
    assert _row(db).status is NotificationStatus.sent
    assert len(twilio_server.created("Messages")) == 1


def test_a_slack_message_is_found_in_the_channel_history_by_its_notification(db, clock):
    from sentinel.alerting.channels.slack import SlackChannel
    from tests.fakes.slack_server import FakeSlackServer

    with FakeSlackServer() as slack_server:
        channel = SlackChannel(slack_server.client(), "#ops")
        dispatcher = Dispatcher(
            db, {"slack": via(channel)}, clock, finders={"slack": find_via(channel)}
        )
        with db.session() as s:
            for key in ("posted-then-died", "died-before-posting"):
                enqueue(s, key, "slack", "#ops", {"text": f"[P1] {key}"}, clock.now())
        items = claim(db, clock.now(), LEASE, 10)
        posted = channel.send(message_of(items[0]))  # Slack has it; the dispatcher dies
        clock.advance(LEASE + timedelta(seconds=1))
        dispatcher.drain()
        posts = [r for r in slack_server.requests if r.method == "chat.postMessage"]
        assert [p.params["text"].split(": ", 1)[1] for p in posts] == [
            "[P1] posted-then-died",
            "[P1] died-before-posting",
        ]
        with db.session() as s:
            rows = {r.key: r for r in s.scalars(select(Notification))}
        assert rows["posted-then-died"].provider_id == posted.provider_id
        assert {r.status for r in rows.values()} == {NotificationStatus.sent}
        # A direct message to a user id has no history to read: sent again, flagged.
        with db.session() as s:
            enqueue(s, "dm", "slack", "U0ALICE", {"text": "[P1] dm"}, clock.now())
        claim(db, clock.now(), LEASE, 10)
        clock.advance(LEASE + timedelta(seconds=1))
        dispatcher.drain()
        with db.session() as s:
            dm = s.scalar(select(Notification).where(Notification.key == "dm"))
            note = s.scalar(
                select(DeliveryAttempt.error).where(DeliveryAttempt.notification_id == dm.id)
            )
        assert dm.status is NotificationStatus.sent and "may be a duplicate" in note
