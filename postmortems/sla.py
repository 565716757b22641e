"""Severity targets, the passive and active phases, SLA status and postmortem due dates.

Seed 002's priorities, read as they are written:

    P0  response 15 min            resolution 2 h
    P1  response 30 min            resolution 4 h
    P2  response 2 h               resolution 1 working day
    P3  response 1 working day     resolution 3 working days

Targets in hours run on the wall clock (an outage at 3 a.m. is still an outage); targets
in working days count business time on a ``BusinessCalendar`` (one working day = the
calendar's day, 9 h for 09:00-18:00), so a P2 detected on Friday at 17:00 is due to be
resolved on Monday at 17:00. Pure: "now" is an argument."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, computed_field

from postmortems.calendar import BusinessCalendar

Target = Literal["response", "resolution"]


class SeverityTarget(BaseModel):
    """How fast a severity must be acknowledged and resolved. A target in working days
    is stored as whole days (``timedelta(days=1)`` = 1 working day) with its flag set."""

    model_config = ConfigDict(frozen=True)

    severity: str
    response: timedelta
    resolution: timedelta
    response_in_working_days: bool = False
    resolution_in_working_days: bool = False

    @computed_field  # type: ignore[prop-decorator]
    @property
    def business_hours(self) -> bool:
        """True when a target of this severity counts business time only."""
        return self.response_in_working_days or self.resolution_in_working_days

    def due(self, which: Target, since: datetime, calendar: BusinessCalendar) -> datetime:
        """When the response or resolution target runs out, counted from ``since``."""
        amount = self.response if which == "response" else self.resolution
        working = (
            self.response_in_working_days
            if which == "response"
            else self.resolution_in_working_days
        )
        if not working:
            return since + amount
        working_days = amount / timedelta(days=1)
        return calendar.add_business_time(since, working_days * calendar.workday_length)

    def describe(self) -> str:
        """'response 2 h, resolution 1 working day'."""
        return (
            f"response {_human(self.response, self.response_in_working_days)}, "
            f"resolution {_human(self.resolution, self.resolution_in_working_days)}"
        )


def _human(amount: timedelta, working_days: bool) -> str:
    if working_days:
        days = amount / timedelta(days=1)
        return f"{days:g} working day" + ("" if days == 1 else "s")
    minutes = amount / timedelta(minutes=1)
    return f"{minutes:g} min" if minutes < 60 else f"{minutes / 60:g} h"


SEVERITY_TARGETS: dict[str, SeverityTarget] = {
    "P0": SeverityTarget(
        severity="P0", response=timedelta(minutes=15), resolution=timedelta(hours=2)
    ),
    "P1": SeverityTarget(
        severity="P1", response=timedelta(minutes=30), resolution=timedelta(hours=4)
    ),
    "P2": SeverityTarget(
        severity="P2",
        response=timedelta(hours=2),
        resolution=timedelta(days=1),
        resolution_in_working_days=True,
    ),
    "P3": SeverityTarget(
        severity="P3",
        response=timedelta(days=1),
        resolution=timedelta(days=3),
        response_in_working_days=True,
        resolution_in_working_days=True,
    ),
}


def target_for(severity: str) -> SeverityTarget:
    try:
        return SEVERITY_TARGETS[severity]
    except KeyError:
        known = ", ".join(SEVERITY_TARGETS)
        raise ValueError(f"unknown severity {severity!r} (known: {known})") from None


# --- phases ---------------------------------------------------------------------------


class Phases(BaseModel):
    """Seed 003 §1: passive = from the first anomalous sample to detection (nobody knew
    yet); active = from detection to resolution (people fighting it). None when an end
    is unknown."""

    passive: timedelta | None
    active: timedelta | None
    active_open: bool = False  # still running: measured to "now"


def phases(
    started_at: datetime | None,
    detected_at: datetime | None,
    resolved_at: datetime | None,
    now: datetime,
) -> Phases:
    """The phases of one incident. The active phase of an unresolved incident runs to
    ``now``. An incident a person noticed before any sample looked anomalous (started
    after detected) has a zero passive phase, not a negative one; likewise a resolution
    recorded before detection gives a zero active phase."""
    passive = None
    if started_at is not None and detected_at is not None:
        passive = max(detected_at - started_at, timedelta(0))
    active = None
    if detected_at is not None:
        active = max((resolved_at or now) - detected_at, timedelta(0))
    return Phases(
        passive=passive, active=active, active_open=detected_at is not None and resolved_at is None
    )


# --- SLA status -----------------------------------------------------------------------


class SlaStatus(BaseModel):
    """Where an incident stands against its severity's targets, both counted from
    detection. ``*_taken`` is wall-clock time (None until done); ``*_left`` is what
    remains until due while not done (negative once overdue, None when done)."""

    severity: str
    targets: str  # 'response 15 min, resolution 2 h'
    response_due: datetime | None
    resolution_due: datetime | None
    response_breached: bool
    resolution_breached: bool
    response_taken: timedelta | None
    resolution_taken: timedelta | None
    response_left: timedelta | None
    resolution_left: timedelta | None

    @property
    def breached(self) -> bool:
        return self.response_breached or self.resolution_breached


def sla_status(
    severity: str,
    detected_at: datetime | None,
    acknowledged_at: datetime | None,
    resolved_at: datetime | None,
    now: datetime,
    calendar: BusinessCalendar,
) -> SlaStatus:
    """Response is met by an acknowledgement (or by the resolution itself when nobody
    acknowledged first); a target is breached when it was met late, or is still unmet
    after its due time at ``now``. Without a detection time nothing is due yet."""
    target = target_for(severity)
    if detected_at is None:
        return SlaStatus(
            severity=severity,
            targets=target.describe(),
            response_due=None,
            resolution_due=None,
            response_breached=False,
            resolution_breached=False,
            response_taken=None,
            resolution_taken=None,
            response_left=None,
            resolution_left=None,
        )
    responded = _earliest(acknowledged_at, resolved_at)
    response_due = target.due("response", detected_at, calendar)
    resolution_due = target.due("resolution", detected_at, calendar)
    return SlaStatus(
        severity=severity,
        targets=target.describe(),
        response_due=response_due,
        resolution_due=resolution_due,
        response_breached=(responded or now) > response_due,
        resolution_breached=(resolved_at or now) > resolution_due,
        response_taken=None if responded is None else max(responded - detected_at, timedelta(0)),
        resolution_taken=(
            None if resolved_at is None else max(resolved_at - detected_at, timedelta(0))
        ),
        response_left=None if responded is not None else response_due - now,
        resolution_left=None if resolved_at is not None else resolution_due - now,
    )


def _earliest(*moments: datetime | None) -> datetime | None:
    known = [m for m in moments if m is not None]
    return min(known) if known else None


# --- postmortem due -------------------------------------------------------------------

POSTMORTEM_CALENDAR_DAYS = {"P0": 3, "P1": 3}
POSTMORTEM_WORKING_DAYS = {"P2": 5}


def postmortem_due(
    severity: str, resolved_at: datetime | None, calendar: BusinessCalendar
) -> datetime | None:
    """When the postmortem is due (issue 6): 3 calendar days after resolution for P0/P1,
    5 working days for P2. P3 gets no due date (its postmortem is still required to close
    the incident, but nobody is chased for it); nothing is due before resolution."""
    target_for(severity)  # refuse unknown severities
    if resolved_at is None:
        return None
    if severity in POSTMORTEM_CALENDAR_DAYS:
        return resolved_at + timedelta(days=POSTMORTEM_CALENDAR_DAYS[severity])
    if severity in POSTMORTEM_WORKING_DAYS:
        return calendar.add_business_days(resolved_at, POSTMORTEM_WORKING_DAYS[severity])
    return None
