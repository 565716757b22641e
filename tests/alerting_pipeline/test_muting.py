"""Inhibition, silences and maintenance windows keep pages away; flapping
alerts reopen their group instead of paging from the start."""

from __future__ import annotations

from datetime import timedelta

import pytest

from common.clock import FakeClock
from sentinel.alerting.actions import ActionError, act, add_silence, expire_silence
from sentinel.alerting.models import GroupState
from sentinel.alerting.notifier import Notifier
from tests.alerting_pipeline.conftest import Rig, make_config


def _people_paged(rig):  # type: ignore[no-untyped-def]
    return [(n.person, n.payload["fingerprint"]) for n in rig.notifications() if n.person]


def test_a_database_outage_mutes_payment_alerts_of_its_own_service_only(rig):
    rig.fire("database.down", severity="P0", service="payments")
    rig.fire("payments.failed", severity="P1", service="payments")
    rig.fire("payments.failed", severity="P1", service="billing")
    rig.clock.advance(seconds=30)
    rig.run()
    groups = {g.labels["signal"] + "/" + g.labels["service"]: g for g in rig.groups()}
    paged = {fp for _, fp in _people_paged(rig)}
    assert f"group:{groups['database.down/payments'].id}" in paged
    assert f"group:{groups['payments.failed/billing'].id}" in paged
    assert f"group:{groups['payments.failed/payments'].id}" not in paged
    # Once the database is back, the still-failing payments page after all.
    rig.calm("database.down", severity="P0", service="payments")
    rig.clock.advance(seconds=1)
    rig.run()
    muted_group = f"group:{groups['payments.failed/payments'].id}"
    assert muted_group in {fp for _, fp in _people_paged(rig)}


def test_a_silence_holds_pages_until_it_ends(rig):
    now = rig.clock.now()
    with rig.db.session() as s:
        add_silence(
            s,
            ['signal="payments.failed"', 'service="translator"'],
            now,
            now + timedelta(hours=1),
            created_by="alice",
            comment="wallet provider maintenance",
            now=now,
        )
    rig.fire("payments.failed", service="translator")
    rig.clock.advance(seconds=30)
    rig.run()
    rig.clock.advance(minutes=30)
    rig.run()
    assert rig.pages() == []
    rig.clock.advance(minutes=31)  # the silence is over and the alert still fires
    rig.run()
    assert [c for c, _, _ in rig.pages()] == ["voice", "slack"]


def test_an_expired_silence_stops_muting_at_once(rig):
    now = rig.clock.now()
    with rig.db.session() as s:
        row = add_silence(
            s, ['service="translator"'], now, now + timedelta(days=1), "alice", "deploy", now
        )
    rig.fire("payments.failed", service="translator")
    rig.clock.advance(seconds=30)
    rig.run()
    assert rig.pages() == []
    with rig.db.session() as s:
        expire_silence(s, row.id, by="alice", via="cli", now=rig.clock.now())
    rig.clock.advance(minutes=1)
    rig.run()
    assert [c for c, _, _ in rig.pages()] == ["voice", "slack"]


@pytest.mark.parametrize(
    ("matchers", "comment", "message"),
    [
        (["not a matcher"], "x", "not a matcher"),
        (['service="a"'], "  ", "comment"),
    ],
)
def test_a_bad_silence_is_refused_with_the_reason(rig, matchers, comment, message):
    now = rig.clock.now()
    with rig.db.session() as s, pytest.raises(ActionError) as err:
        add_silence(s, matchers, now, now + timedelta(hours=1), "alice", comment, now)
    assert err.value.status == 422 and message in str(err.value)


def test_silencing_from_the_keypad_mutes_the_group_for_30_minutes(rig):
    rig.fire("payments.failed", service="translator")
    rig.clock.advance(seconds=30)
    rig.run()
    (group,) = rig.groups()
    with rig.db.session() as s:
        act(s, "silence", group.id, by="alice", via="phone", now=rig.clock.now())
    rig.clock.advance(minutes=29)
    rig.run()
    assert [p for p, _ in _people_paged(rig)] == ["alice"]  # the manager was not woken
    rig.clock.advance(minutes=2)
    rig.run()
    assert [p for p, _ in _people_paged(rig)] == ["alice", "manager"]


def test_a_maintenance_window_mutes_only_inside_its_local_hours(sentinel_url):
    from sentinel.db import Database

    extra = """
maintenance_windows:
  - name: nightly-backup
    matchers: ['signal="queue.lag"']
    time_zone: Europe/Berlin
    start: "03:00"
    end: "03:30"
"""
    db = Database(sentinel_url)
    # 2026-03-29 is Berlin's spring-forward day: 03:10 local is 01:10 UTC.
    clock = FakeClock()
    clock.set(clock.now().replace(year=2026, month=3, day=29, hour=1, minute=10))
    rig = Rig(db, clock, Notifier(db, make_config(extra), clock))
    rig.fire("queue.lag", severity="P2", service="translator")
    rig.run()
    assert rig.pages() == []
    rig.clock.advance(minutes=21)  # 03:31 local: the window is over
    rig.run()
    assert [c for c, _, _ in rig.pages()] == ["sms", "slack"]
    db.dispose()


def test_a_flapping_alert_reopens_its_group_without_paging_from_the_start(rig):
    rig.fire("payments.failed", service="translator")
    rig.clock.advance(seconds=30)
    rig.run()
    (group,) = rig.groups()
    with rig.db.session() as s:
        act(s, "acknowledge", group.id, by="alice", via="slack", now=rig.clock.now())
    rig.calm("payments.failed", service="translator")
    rig.clock.advance(seconds=5)
    rig.run()
    assert rig.groups()[0].state is GroupState.resolved
    rig.clock.advance(minutes=3)
    rig.fire("payments.failed", service="translator")  # back within flap_minutes
    rig.clock.advance(seconds=30)
    rig.run()
    (reopened,) = rig.groups()
    assert reopened.id == group.id and reopened.reopened == 1
    assert reopened.state is GroupState.acknowledged  # alice still owns it
    assert [p for p, _ in _people_paged(rig)].count("alice") == 2  # page + resolved notice
    slack = [n for n in rig.notifications() if n.channel == "slack"]
    assert "flapping" in slack[-1].payload["detail"]


def test_a_re_fire_long_after_resolving_is_a_new_page(rig):
    rig.fire("payments.failed", service="translator")
    rig.clock.advance(seconds=30)
    rig.run()
    rig.calm("payments.failed", service="translator")
    rig.run()
    rig.clock.advance(hours=2)
    rig.fire("payments.failed", service="translator")
    rig.clock.advance(seconds=30)
    rig.run()
    assert len(rig.groups()) == 2
    assert [c for c, p, _ in rig.pages() if p == "alice"] == ["voice", "sms", "voice"]


def _run_every(rig, seconds: float, total: float) -> None:  # type: ignore[no-untyped-def]
    """The leader's loop: a pipeline run every ``seconds`` for ``total`` seconds."""
    for _ in range(int(total // seconds)):
        rig.clock.advance(seconds=seconds)
        rig.run()


def test_a_muted_group_resumes_its_escalation_where_it_stood(rig):
    """alice is paged; two minutes into her five, the group is silenced for ten. When
    the silence ends the manager is not called at once (the five minutes ran out long
    ago on the wall clock) but after the three minutes alice still had."""
    rig.fire("payments.failed", service="translator")
    rig.clock.advance(seconds=30)
    rig.run()
    assert [p for _, p, _ in rig.pages() if p != "#ops"] == ["alice"]
    _run_every(rig, 10, 120)
    [group] = rig.groups()
    with rig.db.session() as s:
        act(s, "silence", group.id, by="alice", via="api", now=rig.clock.now(), silence_minutes=10)
    rig.run()  # the loop's next run, the same second
    _run_every(rig, 10, 9 * 60 + 50)
    [group] = rig.groups()
    assert group.escalation_paused_at is not None  # the clock stands while muted
    _run_every(rig, 10, 10)  # the silence ends
    _run_every(rig, 10, 2 * 60 + 50)  # unmuted: 2 min 50 s of alice's 3 remaining
    assert "manager" not in [p for _, p, _ in rig.pages()]
    _run_every(rig, 10, 30)
    assert [p for _, p, _ in rig.pages() if p != "#ops"] == ["alice", "manager"]
    [group] = rig.groups()
    assert group.escalation_paused_at is None


def test_a_group_muted_past_its_step_does_not_page_the_moment_the_mute_ends(rig):
    """Before: the overdue step paged the instant the silence lapsed."""
    rig.fire("payments.failed", service="translator")
    rig.clock.advance(seconds=30)
    rig.run()
    [group] = rig.groups()
    with rig.db.session() as s:
        act(s, "silence", group.id, by="alice", via="api", now=rig.clock.now(), silence_minutes=30)
    _run_every(rig, 10, 31 * 60)
    assert [p for _, p, _ in rig.pages() if p != "#ops"] == ["alice"]
