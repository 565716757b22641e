"""Reminders: postmortems due (3 calendar days P0/P1, 5 business days P2) and
overdue action items, through the sentinel's announcements, repeated at their
interval until done."""

from __future__ import annotations

import json
from datetime import date, timedelta

import httpx

from common.clock import FakeClock
from postmortems.reminders import ReminderMessage, Reminders, http_sender
from postmortems.schemas import ActionIn, ActionPatch
from postmortems.service import Postmortems
from tests.postmortems.conftest import COMPLETE, incident_in, resolve


class Outbox:
    def __init__(self) -> None:
        self.sent: list[ReminderMessage] = []
        self.failing = False

    def __call__(self, message: ReminderMessage) -> int:
        if self.failing:
            raise httpx.ConnectError("sentinel unreachable")
        self.sent.append(message)
        return 1


def test_a_postmortem_reminder_repeats_until_the_form_is_complete(
    pm: Postmortems, clock: FakeClock
) -> None:
    outbox = Outbox()
    reminders = Reminders(pm, outbox)
    incident = pm.open(incident_in(severity="P1", lead="carol")).incident
    assert reminders.run_once() == []  # nothing is owed before resolution
    resolve(pm, incident.id)
    [first] = reminders.run_once()
    assert first.key == f"postmortem:{incident.id}"
    assert first.to == ["carol"] and first.state == "reminder-1"
    assert "due in 3 d 0 h" in first.title
    assert f"/incidents/{incident.id}" in first.text
    assert reminders.run_once() == []  # not again within the interval
    clock.advance(hours=25)
    [second] = reminders.run_once()
    assert second.key == first.key and second.state == "reminder-2"
    clock.advance(days=3)
    [late] = reminders.run_once()
    assert "overdue" in late.title and late.severity == "warning"
    pm.save_postmortem(incident.id, COMPLETE, "carol")
    clock.advance(days=1)
    assert reminders.run_once() == []
    assert len(outbox.sent) == 3


def test_p2_is_due_after_five_business_days_and_p3_is_not_chased(
    pm: Postmortems, clock: FakeClock
) -> None:
    reminders = Reminders(pm, Outbox())
    p2 = pm.open(incident_in(severity="P2", service="a")).incident
    p3 = pm.open(incident_in(severity="P3", service="b")).incident
    resolve(pm, p2.id)
    resolve(pm, p3.id)
    owed = {m.key: m for m in reminders.due()}
    assert set(owed) == {f"postmortem:{p2.id}"}
    assert "2026-01-12" in owed[f"postmortem:{p2.id}"].text  # Monday + 5 working days


def test_overdue_action_items_are_chased_until_done(pm: Postmortems, clock: FakeClock) -> None:
    outbox = Outbox()
    reminders = Reminders(pm, outbox)
    incident = pm.open(incident_in()).incident
    action = pm.add_action(
        incident.id,
        ActionIn(
            title="Fix the formatter", kind="corrective", owner="bob", due_date=date(2026, 1, 6)
        ),
        "lead",
    )
    assert reminders.run_once() == []  # due tomorrow
    clock.advance(days=2)
    [message] = reminders.run_once()
    assert message.key == f"action:{action.id}" and message.to == ["bob"]
    assert "1 day(s) overdue" in message.title
    clock.advance(days=1)
    assert [m.key for m in reminders.run_once()] == [f"action:{action.id}"]
    pm.update_action(action.id, ActionPatch(status="done"), "bob")
    clock.advance(days=1)
    assert reminders.run_once() == []


def test_a_failed_delivery_is_retried_on_the_next_pass(pm: Postmortems, clock: FakeClock) -> None:
    outbox = Outbox()
    reminders = Reminders(pm, outbox)
    incident = pm.open(incident_in()).incident
    resolve(pm, incident.id)
    outbox.failing = True
    assert reminders.run_once() == []
    outbox.failing = False
    assert [m.key for m in reminders.run_once()] == [f"postmortem:{incident.id}"]


def test_the_http_sender_speaks_the_announcements_contract() -> None:
    seen: list[httpx.Request] = []

    def sentinel(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(202, json={"notifications": 2})

    send = http_sender("http://sentinel.test", "tok", transport=httpx.MockTransport(sentinel))
    count = send(
        ReminderMessage(
            key="postmortem:7",
            title="Postmortem due",
            text="Fill it",
            labels={"service": "translator"},
            to=["carol"],
            incident_id=7,
        )
    )
    assert count == 2
    [request] = seen
    assert request.url.path == "/api/announcements"
    assert request.headers["authorization"] == "Bearer tok"
    body = json.loads(request.content)
    assert body == {
        "key": "postmortem:7",
        "title": "Postmortem due",
        "text": "Fill it",
        "state": "reminder",
        "severity": "warning",
        "labels": {"service": "translator"},
        "to": ["carol"],
    }


def test_reminders_are_due_relative_to_resolution(pm: Postmortems, clock: FakeClock) -> None:
    incident = pm.open(incident_in(severity="P0")).incident
    clock.advance(hours=5)
    resolve(pm, incident.id)
    [message] = Reminders(pm, Outbox()).due()
    due = clock.now() + timedelta(days=3)
    assert f"{due:%Y-%m-%d %H:%M}" in message.text


def test_reminders_reach_the_sentinel_outbox_and_repeat(  # type: ignore[no-untyped-def]
    pm: Postmortems, clock: FakeClock, sentinel_url: str
) -> None:
    from sqlalchemy import select

    from postmortems.reminders import sentinel_sender
    from sentinel.db import Database as SentinelDatabase
    from sentinel.models import Notification

    sentinel_db = SentinelDatabase(sentinel_url)
    reminders = Reminders(pm, sentinel_sender(sentinel_db, clock.now))
    incident = pm.open(incident_in(lead="sysadmin-1")).incident
    action = pm.add_action(
        incident.id,
        ActionIn(
            title="Fix the formatter",
            kind="corrective",
            owner="nobody-known",
            due_date=date(2026, 1, 4),
        ),
        "lead",
    )
    resolve(pm, incident.id)
    assert len(reminders.run_once()) == 2
    clock.advance(hours=25)
    assert len(reminders.run_once()) == 2
    with sentinel_db.session() as s:
        rows = list(s.scalars(select(Notification).order_by(Notification.id)))
    sentinel_db.dispose()
    by_key: dict[str, list[Notification]] = {}
    for n in rows:
        by_key.setdefault(n.payload["fingerprint"], []).append(n)
    postmortem = by_key[f"announcement:postmortem:{incident.id}"]
    assert len(postmortem) == 2  # delivered again, not deduplicated
    assert {n.person for n in postmortem} == {"sysadmin-1"}
    # An owner the alerting configuration does not know: the announcement channels.
    overdue = by_key[f"announcement:action:{action.id}"]
    assert len(overdue) == 2 and {n.person for n in overdue} == {None}
