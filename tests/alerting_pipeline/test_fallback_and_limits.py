"""Delivery you can trust: fallback per person, next step when a call reaches
a voicemail, rate limits with bundles, and schedule gaps that do not swallow pages."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from sentinel.alerting.dispatcher import Dispatcher
from sentinel.alerting.notifier import Notifier
from sentinel.alerting.outbox import RetryPolicy
from sentinel.alerting.reactions import Reactions, call_outcome, sms_outcome
from sentinel.models import DeliveryAttempt, Notification
from tests.alerting_pipeline.conftest import Rig, make_config


@dataclass
class Answer:
    ok: bool
    retryable: bool = False
    provider_id: str | None = None
    retry_after: float | None = None
    error: str | None = None
    status: str = "queued"


def _dispatcher(rig, sent, fail=()):  # type: ignore[no-untyped-def]
    def send(item):  # type: ignore[no-untyped-def]
        sent.append((item.channel, item.recipient))
        if item.channel in fail:
            return Answer(False, error="twilio 400 code=30006: landline or unreachable carrier")
        return Answer(True, provider_id=f"SID{item.id}")

    channels = {name: send for name in ("sms", "voice", "slack", "console", "webhook")}
    reactions = Reactions(rig.notifier.config)
    return Dispatcher(
        rig.db, channels, rig.clock, RetryPolicy(max_attempts=2), on_failed=reactions.on_failed
    )


def _p2(rig):  # type: ignore[no-untyped-def]
    rig.fire("queue.lag", severity="P2", service="translator")
    rig.run()


def test_an_sms_that_cannot_be_sent_becomes_a_call(rig):
    sent: list[tuple[str, str]] = []
    _p2(rig)
    _dispatcher(rig, sent, fail={"sms"}).run_once()
    _dispatcher(rig, sent).run_once()
    assert ("voice", "+15550000001") in sent
    (call,) = [n for n in rig.notifications() if n.channel == "voice"]
    assert call.key.endswith(":fallback:voice") and call.person == "alice"


def test_an_undelivered_sms_receipt_becomes_a_call(rig):
    sent: list[tuple[str, str]] = []
    _p2(rig)
    _dispatcher(rig, sent).run_once()
    reactions = Reactions(rig.notifier.config)
    with rig.db.session() as s:
        sms = s.scalar(select(Notification).where(Notification.channel == "sms"))
        reactions.on_callback(s, sms, sms_outcome("undelivered"), rig.clock.now())
    _dispatcher(rig, sent).run_once()
    assert sent[-1] == ("voice", "+15550000001")
    with rig.db.session() as s:
        statuses = s.scalars(select(DeliveryAttempt.status).order_by(DeliveryAttempt.id)).all()
    assert "undelivered" in statuses  # the receipt is on record with the attempts


def test_a_call_answered_by_voicemail_moves_to_the_next_step_now(rig):
    sent: list[tuple[str, str]] = []
    rig.fire("payments.failed", service="translator")
    rig.clock.advance(seconds=30)
    rig.run()
    _dispatcher(rig, sent).run_once()
    reactions = Reactions(rig.notifier.config)
    with rig.db.session() as s:
        call = s.scalar(select(Notification).where(Notification.channel == "voice"))
        reactions.on_callback(
            s, call, call_outcome("completed", "machine_end_beep"), rig.clock.now()
        )
    rig.clock.advance(seconds=1)  # not the 5 minutes of the step
    rig.run()
    people = [n.person for n in rig.notifications() if n.person]
    assert people == ["alice", "alice", "manager"]  # alice also gets the SMS fallback
    assert [n.channel for n in rig.notifications() if n.person == "alice"] == ["voice", "sms"]


def test_a_call_answered_by_a_human_is_confirmed_and_escalation_waits(rig):
    sent: list[tuple[str, str]] = []
    rig.fire("payments.failed", service="translator")
    rig.clock.advance(seconds=30)
    rig.run()
    _dispatcher(rig, sent).run_once()
    with rig.db.session() as s:
        call = s.scalar(select(Notification).where(Notification.channel == "voice"))
        Reactions(rig.notifier.config).on_callback(
            s, call, call_outcome("completed", "human"), rig.clock.now()
        )
    rig.clock.advance(minutes=1)
    rig.run()
    assert [n.person for n in rig.notifications() if n.person] == ["alice"]
    with rig.db.session() as s:
        assert s.scalar(select(Notification.confirmed_at).where(Notification.channel == "voice"))


def test_past_the_rate_limit_pages_wait_and_go_out_as_one_bundle(sentinel_url):
    from common.clock import FakeClock
    from sentinel.db import Database

    db = Database(sentinel_url)
    clock = FakeClock()
    config = make_config("rate_limits:\n  sms: {max: 3, per_minutes: 10}\n")
    rig = Rig(db, clock, Notifier(db, config, clock))
    for i in range(8):
        rig.fire(f"signal.{i}", severity="P2", service=f"svc{i}")  # 8 groups, same on-call
    rig.run()
    sms = [n for n in rig.notifications() if n.channel == "sms"]
    assert [n.status.value for n in sms] == ["pending"] * 3 + ["held"] * 5
    clock.advance(minutes=10, seconds=1)
    rig.run()
    sms = [n for n in rig.notifications() if n.channel == "sms"]
    (bundle,) = [n for n in sms if n.key.startswith("bundle:")]
    assert bundle.payload["text"].startswith("5 more alert notifications")
    assert all(n.bundled_into == bundle.id for n in sms if n.status.value == "bundled")
    assert sum(n.status.value == "bundled" for n in sms) == 5  # none lost
    db.dispose()


def test_a_critical_page_past_the_rate_limit_is_not_held(sentinel_url):
    """The call limit is spent by earlier pages: a new P1 still rings the phone now,
    and a P2 after it waits for the bundle."""
    from common.clock import FakeClock
    from sentinel.db import Database

    db = Database(sentinel_url)
    clock = FakeClock()
    limits = "rate_limits:\n  voice: {max: 1, per_minutes: 10}\n  sms: {max: 1, per_minutes: 10}\n"
    rig = Rig(db, clock, Notifier(db, config := make_config(limits), clock))
    assert config.rate_limits["voice"].max == 1
    for i in range(3):
        rig.fire(f"payments.{i}", severity="P1", service="translator")
    clock.advance(seconds=31)  # past the critical route's group_wait
    rig.run()
    calls = [n for n in rig.notifications() if n.channel == "voice"]
    assert [n.status.value for n in calls] == ["pending"] * 3
    for service in ("a", "b"):
        rig.fire("queue.lag", severity="P2", service=service)
    rig.run()
    texts = [n for n in rig.notifications() if n.channel == "sms"]
    assert [n.status.value for n in texts] == ["pending", "held"]  # a P2 waits its turn
    db.dispose()


def test_a_gap_in_the_schedule_goes_straight_to_the_next_step(sentinel_url):
    from common.clock import FakeClock
    from sentinel.alerting.config import parse_alerting_config
    from sentinel.db import Database
    from tests.alerting_pipeline.conftest import CONFIG

    weekends_only = CONFIG.replace(
        "handoff: weekly}",
        'handoff: weekly}\n        restrictions: [{days: [sat-sun], start: "00:00", end: "24:00"}]',
    )
    db = Database(sentinel_url)
    clock = FakeClock()  # a Monday: nobody on the weekend-only layer
    rig = Rig(db, clock, Notifier(db, parse_alerting_config(weekends_only), clock))
    rig.fire("payments.failed", service="translator")
    clock.advance(seconds=30)
    rig.run()
    rig.run()
    assert [n.person for n in rig.notifications() if n.person] == ["manager"]
    db.dispose()


def test_a_p1_past_the_voice_limit_rings_on_time_carrying_the_held_pages(sentinel_url):
    """Three calls spend alice's voice limit (3 per 10 minutes) and her SMS limit is
    spent too, so two P2 texts wait. A P1 then rings after its usual group_wait, not
    after the window, and its one call carries the two held pages."""
    from datetime import timedelta

    from common.clock import FakeClock
    from sentinel.db import Database

    db = Database(sentinel_url)
    clock = FakeClock()
    limits = "rate_limits:\n  voice: {max: 3, per_minutes: 10}\n  sms: {max: 1, per_minutes: 10}\n"
    rig = Rig(db, clock, Notifier(db, make_config(limits), clock))
    for i in range(3):
        rig.fire(f"payments.{i}", severity="P1", service="translator")
    clock.advance(seconds=31)
    rig.run()
    for service in ("a", "b", "c"):
        rig.fire("queue.lag", severity="P2", service=service)
    rig.run()
    assert [n.status.value for n in rig.notifications() if n.channel == "sms"] == [
        "pending",
        "held",
        "held",
    ]
    fired_at = clock.now()
    rig.fire("payments.failed", severity="P1", service="wallet")
    clock.advance(seconds=30)  # the critical route's group_wait, nothing more
    rig.run()
    calls = [n for n in rig.notifications() if n.channel == "voice"]
    assert len(calls) == 4  # over the limit of 3, and not held
    call = calls[-1]
    assert call.status.value == "pending" and call.person == "alice"
    assert call.created_at - fired_at == timedelta(seconds=30)
    assert call.payload["held"] == 2
    assert call.payload["spoken"].startswith("Priority 1 alert. payments failed, service wallet.")
    assert "Also 2 other alerts waited for you" in call.payload["spoken"]
    assert "also held: [P2] rest{service=b}" in call.payload["text"]
    held = [n for n in rig.notifications() if n.channel == "sms" and n.status.value != "pending"]
    assert [(n.status.value, n.bundled_into) for n in held] == [("bundled", call.id)] * 2
    # Nothing is left for a bundle later: the phone does not ring again for them.
    clock.advance(minutes=11)
    rig.run()
    assert not [n for n in rig.notifications() if n.key.startswith("bundle:")]
    db.dispose()


def _call_and_text_rig(sentinel_url):  # type: ignore[no-untyped-def]
    """The shipped P0/P1 policy's shape: a call, and an SMS beside it (SMS/IVR)."""
    from common.clock import FakeClock
    from sentinel.alerting.config import parse_alerting_config
    from sentinel.db import Database
    from tests.alerting_pipeline.conftest import CONFIG

    config_text = CONFIG.replace(
        "channels: [voice, sms]\n", "channels: [voice]\n        also: [sms]\n", 1
    )
    config = parse_alerting_config(config_text, "alerting.yaml")
    db, clock = Database(sentinel_url), FakeClock()
    return Rig(db, clock, Notifier(db, config, clock))


def test_a_call_and_its_sms_go_out_together(sentinel_url):
    rig = _call_and_text_rig(sentinel_url)
    rig.fire("payments.failed", service="translator")
    rig.clock.advance(seconds=30)
    rig.run()
    sent: list[tuple[str, str]] = []
    _dispatcher(rig, sent).run_once()
    assert sorted(x for x in sent if x[0] != "slack") == [
        ("sms", "+15550000001"),
        ("voice", "+15550000001"),
    ]
    sms = next(n for n in rig.notifications() if n.channel == "sms")
    assert "payments.failed" in sms.payload["text"]  # the text the call cannot leave
    rig.db.dispose()


def test_an_sms_beside_a_call_that_fails_leaves_the_call_to_decide(sentinel_url):
    rig = _call_and_text_rig(sentinel_url)
    rig.fire("payments.failed", service="translator")
    rig.clock.advance(seconds=30)
    rig.run()
    _dispatcher(rig, [], fail={"sms"}).run_once()
    rig.clock.advance(seconds=1)
    rig.run()
    # no fallback call for the SMS, and the manager is not woken before the step's 5 minutes
    assert [(n.channel, n.person) for n in rig.notifications() if n.person] == [
        ("voice", "alice"),
        ("sms", "alice"),
    ]
    rig.db.dispose()
