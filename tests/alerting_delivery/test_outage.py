"""A provider outage does not use up the escalation: a person's page keeps
retrying (bounded back-off) on every channel the policy allows until someone
acknowledges, and goes out the moment the provider is back. A hung provider
holds only its own pages, and a stopped dispatcher hands its claims back."""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import timedelta

from sqlalchemy import select

from sentinel.alerting import actions
from sentinel.alerting.dispatcher import Dispatcher
from sentinel.alerting.outbox import RetryPolicy, enqueue
from sentinel.alerting.reactions import Reactions
from sentinel.models import DeliveryAttempt, NotificationStatus
from tests.alerting_delivery.conftest import Provider
from tests.alerting_pipeline.conftest import Rig

STEP = timedelta(seconds=10)


def _dispatcher(rig: Rig, twilio: Provider, slack: Provider, **kwargs) -> Dispatcher:  # type: ignore[no-untyped-def]
    reactions = Reactions(rig.notifier.config)
    return Dispatcher(
        rig.db,
        {"voice": twilio, "sms": twilio, "slack": slack},
        rig.clock,
        RetryPolicy(max_attempts=3, backoff_seconds=2, max_backoff_seconds=30),
        on_failed=reactions.on_failed,
        on_stalled=reactions.on_stalled,
        **kwargs,
    )


def _page_a_p1(rig: Rig) -> None:
    rig.fire("payments.failed", service="translator")
    rig.clock.advance(seconds=30)  # the route's group_wait
    rig.run()


def _live(rig: Rig, dispatcher: Dispatcher, duration: timedelta) -> None:
    """The notifier and the dispatcher as they run in a sentinel, on the rig's clock."""
    end = rig.clock.now() + duration
    while rig.clock.now() < end:
        rig.clock.advance(STEP)
        rig.run()
        dispatcher.run_once()


def test_a_p1_outlives_a_long_twilio_outage_and_reaches_people_when_it_ends(rig: Rig) -> None:
    twilio, slack = Provider("twilio"), Provider("slack")
    twilio.up = False
    dispatcher = _dispatcher(rig, twilio, slack)
    _page_a_p1(rig)
    dispatcher.run_once()
    # 40 minutes of outage: both steps, the repeat, and then some.
    _live(rig, dispatcher, timedelta(minutes=40))
    (group,) = rig.groups()
    assert group.state.value == "open" and group.next_escalation_at is None  # escalation ran out
    statuses = Counter(n.status.value for n in rig.notifications() if n.person)
    assert statuses["failed"] == 0  # nothing given up on
    waiting = [n for n in rig.notifications() if n.status is NotificationStatus.pending]
    # one page per person and channel the policy allows, the repeat's folded into them
    assert sorted((n.person, n.channel) for n in waiting) == [
        ("alice", "sms"),
        ("alice", "voice"),
        ("manager", "voice"),
    ]
    retries = max(n.attempts for n in waiting)
    assert retries > 40  # kept trying all along, every 30 s at most
    assert twilio.sent == []

    twilio.up = True
    recovered_at = rig.clock.now()
    while not twilio.sent:
        rig.clock.advance(seconds=5)
        dispatcher.run_once()
    # The first page through brought every waiting page of its channel forward: the
    # other channel's next try is at most the 30 s cap away.
    assert rig.clock.now() - recovered_at <= timedelta(seconds=35)
    for _ in range(7):
        rig.clock.advance(seconds=5)
        dispatcher.run_once()
    reached = Counter(
        (n.person, n.channel)
        for n in rig.notifications()
        if n.person and n.status is NotificationStatus.sent
    )
    assert reached == {("alice", "voice"): 1, ("alice", "sms"): 1, ("manager", "voice"): 1}
    assert Counter(i.channel for i in twilio.sent) == {"voice": 2, "sms": 1}


def test_an_acknowledged_page_is_not_sent_after_the_outage(rig: Rig) -> None:
    twilio, slack = Provider("twilio"), Provider("slack")
    twilio.up = False
    dispatcher = _dispatcher(rig, twilio, slack)
    _page_a_p1(rig)
    _live(rig, dispatcher, timedelta(minutes=2))
    (group,) = rig.groups()
    with rig.db.session() as s:
        actions.act(s, "acknowledge", group.id, "alice", "api", rig.clock.now())
    twilio.up = True
    _live(rig, dispatcher, timedelta(minutes=1))
    assert twilio.sent == []  # alice owns it: nobody is woken for it any more
    pages = [n for n in rig.notifications() if n.person]
    assert pages and {n.status for n in pages} == {NotificationStatus.cancelled}
    with rig.db.session() as s:
        assert "cancelled" in s.scalars(select(DeliveryAttempt.status)).all()


def test_a_broadcast_still_gives_up_after_its_attempts(rig: Rig) -> None:
    twilio, slack = Provider("twilio"), Provider("slack")
    slack.up = False
    dispatcher = _dispatcher(rig, twilio, slack)
    _page_a_p1(rig)
    _live(rig, dispatcher, timedelta(minutes=3))
    (broadcast,) = [n for n in rig.notifications() if n.channel == "slack"]
    assert broadcast.status is NotificationStatus.failed and broadcast.attempts == 3


def _wait(predicate, seconds: float = 15.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


def test_a_hung_provider_holds_only_its_own_pages_and_stop_hands_claims_back(rig: Rig) -> None:
    twilio, slack = Provider("twilio"), Provider("slack")
    twilio.hung = True
    dispatcher = _dispatcher(rig, twilio, slack, workers=4)
    with rig.db.session() as s:
        for i in range(3):
            enqueue(s, f"sms{i}", "sms", "+15550000001", {"text": f"page {i}"}, rig.clock.now())
        for i in range(5):
            enqueue(s, f"slack{i}", "slack", "#ops", {"text": f"note {i}"}, rig.clock.now())
    thread = threading.Thread(target=dispatcher.serve, args=(0.1,), daemon=True)
    thread.start()
    try:
        _wait(lambda: len(slack.sent) == 5)  # not behind the hung SMS
        _wait(lambda: twilio.tries == 3)  # one worker is always left for other channels
        dispatcher.stop()
        thread.join(15)
        assert not thread.is_alive(), "the dispatcher did not stop"
    finally:
        twilio.release.set()
        dispatcher.close()
    by_key = {n.key: n for n in rig.notifications()}
    assert all(by_key[f"slack{i}"].status is NotificationStatus.sent for i in range(5))
    for i in range(3):
        row = by_key[f"sms{i}"]
        # handed back, due now, and whoever takes it asks the provider first
        assert row.status is NotificationStatus.pending and row.claim_token is None
        assert row.taken_over is True


def test_a_long_inline_batch_keeps_its_claims_alive(rig: Rig) -> None:
    """One worker sends a batch in order; the heartbeat renews the claims it
    has not reached yet, so no other dispatcher takes them (and sends them twice)."""
    from common.clock import SystemClock
    from sentinel.alerting.outbox import claim

    clock = SystemClock()
    seen: list[list[int]] = []

    def slow(item):  # type: ignore[no-untyped-def]
        time.sleep(0.15)
        seen.append([i.id for i in claim(rig.db, clock.now(), timedelta(seconds=1), 50)])
        return Provider("twilio")(item)

    with rig.db.session() as s:
        for i in range(12):
            enqueue(s, f"n{i}", "sms", "+15550000001", {"text": f"page {i}"}, clock.now())
    dispatcher = Dispatcher(rig.db, {"sms": slow}, clock, lease=timedelta(seconds=0.6))
    assert dispatcher.drain() == 12  # 1.8 s of sending against a 0.6 s lease
    assert all(taken == [] for taken in seen)  # nobody else could claim any of them
    assert {n.status for n in rig.notifications()} == {NotificationStatus.sent}
