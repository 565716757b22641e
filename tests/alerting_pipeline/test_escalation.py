"""Escalation with an injected clock: group wait, steps, repeats, acknowledgement."""

from __future__ import annotations

from datetime import timedelta

from sentinel.alerting.actions import act
from sentinel.alerting.models import GroupState


def _paged(rig):  # type: ignore[no-untyped-def]
    return [(c, who) for c, who, _ in rig.pages() if c != "slack"]


def test_a_new_group_waits_group_wait_then_pages_the_person_on_call(rig):
    rig.fire("payments.failed", service="translator", method="wallet")
    rig.run()
    assert rig.pages() == []  # inside group_wait: more alerts may still join
    rig.clock.advance(seconds=30)
    rig.run()
    assert rig.pages() == [("voice", "alice", "pending"), ("slack", "#ops", "pending")]
    (page,) = [n for n in rig.notifications() if n.channel == "voice"]
    assert page.recipient == "+15550000001"
    assert page.payload["fallback"] == ["sms"]
    assert page.payload["text"].startswith("[P1] payments.failed{method=wallet,service=translator}")
    assert "payments failed, method wallet" in page.payload["spoken"]  # what the call reads


def test_unacknowledged_pages_climb_the_steps_then_repeat_then_stop(rig):
    rig.fire("payments.failed", service="translator")
    rig.clock.advance(seconds=30)
    rig.run()
    rig.clock.advance(minutes=4, seconds=59)
    rig.run()
    assert _paged(rig) == [("voice", "alice")]  # step 1 waits its full 5 minutes
    rig.clock.advance(seconds=1)
    rig.run()
    assert _paged(rig)[-1] == ("voice", "manager")
    rig.clock.advance(minutes=10)
    rig.run()
    assert _paged(rig)[-1] == ("voice", "alice")  # repeat 1: from the top
    rig.clock.advance(minutes=5)
    rig.run()
    rig.clock.advance(minutes=10)
    rig.run()
    rig.clock.advance(hours=2)
    rig.run()
    assert _paged(rig) == [
        ("voice", "alice"),
        ("voice", "manager"),
        ("voice", "alice"),
        ("voice", "manager"),
    ]
    (group,) = rig.groups()
    assert group.next_escalation_at is None and group.repeat == 1


def test_acknowledging_stops_the_escalation_and_updates_the_shared_message(rig):
    rig.fire("payments.failed", service="translator")
    rig.clock.advance(seconds=30)
    rig.run()
    (group,) = rig.groups()
    with rig.db.session() as s:
        act(s, "acknowledge", group.id, by="alice", via="api", now=rig.clock.now())
    rig.run()
    rig.clock.advance(hours=1)
    rig.run()
    assert _paged(rig) == [("voice", "alice")]
    slack = [n for n in rig.notifications() if n.channel == "slack"]
    assert len(slack) == 2
    assert slack[1].payload["ref"] == slack[0].payload["ref"]  # the same message, edited
    assert "Acknowledged by alice" in slack[1].payload["detail"]
    assert rig.groups()[0].state is GroupState.acknowledged


def test_many_alerts_of_one_group_make_one_page(rig):
    for i in range(40):
        rig.fire("http.error_ratio", severity="P0", service="translator", route=f"/r{i}")
    rig.clock.advance(seconds=30)
    rig.run()
    assert rig.pages() == [("voice", "alice", "pending"), ("slack", "#ops", "pending")]
    payload = rig.notifications()[0].payload
    assert payload["text"].startswith("[P0] http.error_ratio{route=/r0,")
    assert " +39 more" in payload["text"]
    assert "And 39 more alerts in this group." in payload["spoken"]
    slack = [n for n in rig.notifications() if n.channel == "slack"][0].payload["detail"]
    assert "39 more firing in this group" in slack and "and 29 more" in slack
    assert rig.groups()[0].severity == "P0"


def test_alerts_joining_later_update_the_message_once_per_group_interval(rig):
    rig.fire("http.error_ratio", service="translator", route="/a")
    rig.clock.advance(seconds=30)
    rig.run()
    rig.fire("http.error_ratio", service="translator", route="/b")
    rig.clock.advance(seconds=10)
    rig.run()
    rig.fire("http.error_ratio", service="translator", route="/c")
    rig.clock.advance(seconds=10)
    rig.run()
    assert [c for c, _, _ in rig.pages()].count("slack") == 1  # interval not over
    rig.clock.advance(minutes=5)
    rig.run()
    slack = [n for n in rig.notifications() if n.channel == "slack"]
    assert len(slack) == 2 and "2 more firing in this group" in slack[1].payload["detail"]
    assert _paged(rig) == [("voice", "alice"), ("voice", "manager")]  # no re-page per alert


def test_resolution_tells_the_shared_channel_and_whoever_was_paged(rig):
    rig.fire("payments.failed", service="translator")
    rig.clock.advance(seconds=30)
    rig.run()
    rig.calm("payments.failed", service="translator")
    rig.clock.advance(seconds=5)
    rig.run()
    assert rig.pages()[-2:] == [("sms", "alice", "pending"), ("slack", "#ops", "pending")]
    assert rig.notifications()[-2].payload["text"].startswith("RESOLVED")
    (group,) = rig.groups()
    assert group.state is GroupState.resolved
    rig.clock.advance(hours=1)
    rig.run()
    assert len(rig.pages()) == 4  # nothing more once resolved


def test_an_alert_that_recovers_inside_group_wait_pages_nobody(rig):
    rig.fire("payments.failed", service="translator")
    rig.clock.advance(seconds=10)
    rig.calm("payments.failed", service="translator")
    rig.run()
    rig.clock.advance(minutes=5)
    rig.run()
    assert rig.pages() == []


def test_next_week_the_rotation_pages_bob(rig):
    rig.clock.advance(timedelta(days=7))
    rig.fire("payments.failed", service="translator")
    rig.clock.advance(seconds=30)
    rig.run()
    assert _paged(rig) == [("voice", "bob")]


def test_lower_severities_go_by_sms_without_group_wait(rig):
    rig.fire("queue.lag", severity="P2", service="translator")
    rig.run()
    assert _paged(rig) == [("sms", "alice")]


def test_resolved_by_hand_while_still_firing_pages_again_saying_so(rig):
    """alice resolves the page but the alert keeps firing: after
    ``repage_resolved_minutes`` (60 by default) she is paged again, from the first
    step, told it is still firing; an alert that stopped by itself does not."""
    rig.fire("payments.failed", service="translator")
    rig.fire("queue.lag", service="translator")
    rig.clock.advance(seconds=30)
    rig.run()
    groups = {g.labels["signal"]: g for g in rig.groups()}
    for signal in ("payments.failed", "queue.lag"):
        with rig.db.session() as s:
            act(s, "resolve", groups[signal].id, by="alice", via="api", now=rig.clock.now())
    rig.calm("queue.lag", service="translator")  # this one really stopped
    rig.run()
    before = len(_paged(rig))
    rig.clock.advance(minutes=59)
    rig.run()
    assert len(_paged(rig)) == before  # not yet
    rig.clock.advance(minutes=1)
    rig.run()
    again = [n for n in rig.notifications() if n.channel == "voice"][-1]
    assert again.person == "alice" and again.payload["fingerprint"] == (
        f"group:{groups['payments.failed'].id}"
    )
    resolved_at = f"{(rig.clock.now() - timedelta(minutes=60)):%H:%M} UTC"
    assert again.payload["text"].startswith(f"STILL FIRING (resolved by hand {resolved_at}) [P1]")
    assert again.payload["spoken"].startswith("Still firing after it was resolved by hand")
    assert len(_paged(rig)) == before + 1  # queue.lag stopped: not paged again
    group = next(g for g in rig.groups() if g.id == groups["payments.failed"].id)
    assert group.state is GroupState.open and group.step == 0
    # It escalates as any page does when nobody acknowledges it this time.
    rig.clock.advance(minutes=5)
    rig.run()
    assert _paged(rig)[-1] == ("voice", "manager")


def test_repaging_a_hand_resolved_alert_can_be_turned_off(sentinel_url):
    from common.clock import FakeClock
    from sentinel.alerting.notifier import Notifier
    from sentinel.db import Database
    from tests.alerting_pipeline.conftest import Rig, make_config

    db = Database(sentinel_url)
    clock = FakeClock()
    rig = Rig(db, clock, Notifier(db, make_config("repage_resolved_minutes: 0\n"), clock))
    rig.fire("payments.failed", service="translator")
    clock.advance(seconds=30)
    rig.run()
    [group] = rig.groups()
    with db.session() as s:
        act(s, "resolve", group.id, by="alice", via="api", now=clock.now())
    rig.run()
    before = len(_paged(rig))
    clock.advance(hours=6)
    rig.run()
    assert len(_paged(rig)) == before
    db.dispose()
