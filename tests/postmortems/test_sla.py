"""Seed 002's targets, the phases of seed 003 §1, breaches against a fixed "now"."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from postmortems.calendar import BusinessCalendar
from postmortems.sla import SEVERITY_TARGETS, phases, postmortem_due, sla_status

MSK = ZoneInfo("Europe/Moscow")
CAL = BusinessCalendar()


def msk(*args: int) -> datetime:
    return datetime(*args, tzinfo=MSK).astimezone(UTC)


def test_targets_are_seed_002s() -> None:
    t = SEVERITY_TARGETS
    assert (t["P0"].response, t["P0"].resolution) == (timedelta(minutes=15), timedelta(hours=2))
    assert (t["P1"].response, t["P1"].resolution) == (timedelta(minutes=30), timedelta(hours=4))
    assert t["P2"].response == timedelta(hours=2) and not t["P2"].response_in_working_days
    assert t["P2"].resolution_in_working_days and t["P3"].response_in_working_days
    assert [s for s, x in t.items() if x.business_hours] == ["P2", "P3"]
    assert t["P3"].describe() == "response 1 working day, resolution 3 working days"
    assert t["P0"].describe() == "response 15 min, resolution 2 h"


# --- phases ---------------------------------------------------------------------------


def test_phases_of_a_resolved_incident() -> None:
    started = datetime(2026, 12, 3, 13, 50, tzinfo=UTC)
    p = phases(started, started + timedelta(minutes=15), started + timedelta(minutes=25), started)
    assert p.passive == timedelta(minutes=15)
    assert p.active == timedelta(minutes=10)
    assert not p.active_open


def test_active_phase_runs_to_now_while_open() -> None:
    detected = datetime(2026, 12, 3, 14, 5, tzinfo=UTC)
    now = detected + timedelta(minutes=42)
    p = phases(detected - timedelta(minutes=3), detected, None, now)
    assert p.active == timedelta(minutes=42) and p.active_open
    later = phases(detected - timedelta(minutes=3), detected, None, now + timedelta(hours=1))
    assert later.active == timedelta(minutes=102)


def test_phases_with_unknown_ends() -> None:
    now = datetime(2026, 12, 3, 15, 0, tzinfo=UTC)
    assert phases(None, now, None, now).passive is None
    p = phases(now, None, None, now)
    assert p.passive is None and p.active is None


def test_a_person_who_noticed_first_gives_a_zero_passive_phase() -> None:
    detected = datetime(2026, 12, 3, 14, 0, tzinfo=UTC)
    p = phases(detected + timedelta(minutes=5), detected, detected + timedelta(hours=1), detected)
    assert p.passive == timedelta(0)


# --- SLA ------------------------------------------------------------------------------


def test_p1_acknowledged_in_time_but_resolved_late() -> None:
    detected = datetime(2026, 12, 5, 3, 0, tzinfo=UTC)  # a Saturday night: wall clock
    status = sla_status(
        "P1",
        detected,
        detected + timedelta(minutes=20),
        detected + timedelta(hours=5),
        now=detected + timedelta(hours=6),
        calendar=CAL,
    )
    assert status.response_due == detected + timedelta(minutes=30)
    assert status.resolution_due == detected + timedelta(hours=4)
    assert not status.response_breached
    assert status.resolution_breached and status.breached
    assert status.response_taken == timedelta(minutes=20)
    assert status.resolution_taken == timedelta(hours=5)
    assert status.response_left is None and status.resolution_left is None


def test_open_p0_breaches_as_time_passes() -> None:
    detected = datetime(2026, 12, 3, 14, 0, tzinfo=UTC)
    early = sla_status("P0", detected, None, None, detected + timedelta(minutes=10), CAL)
    assert not early.breached
    assert early.response_left == timedelta(minutes=5)
    at_due = sla_status("P0", detected, None, None, detected + timedelta(minutes=15), CAL)
    assert not at_due.response_breached
    late = sla_status("P0", detected, None, None, detected + timedelta(minutes=16), CAL)
    assert late.response_breached and not late.resolution_breached
    assert late.response_left == -timedelta(minutes=1)
    assert late.response_taken is None


def test_resolution_without_acknowledgement_counts_as_the_response() -> None:
    detected = datetime(2026, 12, 3, 14, 0, tzinfo=UTC)
    resolved = detected + timedelta(minutes=10)
    status = sla_status("P0", detected, None, resolved, resolved + timedelta(days=1), CAL)
    assert status.response_taken == timedelta(minutes=10)
    assert not status.breached


def test_p2_resolution_counts_working_hours() -> None:
    detected = msk(2026, 12, 4, 17, 0)  # Friday 17:00 Moscow
    status = sla_status("P2", detected, None, None, msk(2026, 12, 7, 16, 0), CAL)
    # response: 2 h of wall clock; resolution: one working day, Monday 17:00
    assert status.response_due == msk(2026, 12, 4, 19, 0)
    assert status.response_breached
    assert status.resolution_due == msk(2026, 12, 7, 17, 0)
    assert not status.resolution_breached
    assert status.resolution_left == timedelta(hours=1)
    after = sla_status("P2", detected, None, None, msk(2026, 12, 7, 17, 1), CAL)
    assert after.resolution_breached


def test_p3_targets_skip_holidays() -> None:
    cal = BusinessCalendar(holidays=[date(2026, 12, 8)])
    detected = msk(2026, 12, 7, 11, 0)  # Monday; Tuesday is a holiday
    status = sla_status("P3", detected, None, None, detected, cal)
    assert status.response_due == msk(2026, 12, 9, 11, 0)
    assert status.resolution_due == msk(2026, 12, 11, 11, 0)


def test_nothing_is_due_before_detection() -> None:
    status = sla_status("P1", None, None, None, datetime(2026, 12, 3, tzinfo=UTC), CAL)
    assert status.response_due is None and not status.breached


def test_unknown_severity_is_refused() -> None:
    now = datetime(2026, 12, 3, tzinfo=UTC)
    with pytest.raises(ValueError, match="unknown severity 'P9'"):
        sla_status("P9", now, None, None, now, CAL)
    with pytest.raises(ValueError, match="unknown severity"):
        postmortem_due("sev1", now, CAL)


# --- postmortem due -------------------------------------------------------------------


def test_postmortem_due_dates() -> None:
    resolved = msk(2026, 12, 4, 15, 0)  # Friday afternoon
    assert postmortem_due("P0", resolved, CAL) == resolved + timedelta(days=3)
    assert postmortem_due("P1", resolved, CAL) == resolved + timedelta(days=3)
    assert postmortem_due("P2", resolved, CAL) == msk(2026, 12, 11, 15, 0)
    assert postmortem_due("P3", resolved, CAL) is None
    assert postmortem_due("P1", None, CAL) is None
