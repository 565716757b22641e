"""Overrides added while the sentinel runs ("I take Saturday for Bob"): stored rows
that sit on top of a schedule's configured layers and overrides, audited with who
added them and through what. Whoever asks who is on call (the escalation, the API,
the console) asks `effective_schedule`, so a stored override pages like one written
in the schedule's file."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from common.bounds import LATEST
from common.logs import get_logger
from sentinel.alerting.actions import ActionError, audit
from sentinel.alerting.config import AlertingConfig, schedule
from sentinel.alerting.models import ScheduleOverride
from sentinel.alerting.schedules import Override, Schedule

log = get_logger(__name__)

# An override covers a holiday or a swap; longer than that is a change to the rota.
MAX_OVERRIDE = timedelta(days=31)
# who_is_on_call looks a week and a day around an instant for the edges of its shift.
LOOK_BACK = timedelta(days=8)


class OverrideError(ValueError):
    """An override that cannot be added; the message says why, for a person."""


def add_override(
    s: Session,
    config: AlertingConfig,
    schedule_name: str,
    person: str,
    starts_at: datetime,
    ends_at: datetime,
    by: str,
    via: str,
    now: datetime,
    reason: str | None = None,
) -> ScheduleOverride:
    """Put `person` on call on the schedule from `starts_at` to `ends_at` (aware
    instants), above its layers, and audit it. OverrideError: no such schedule, a
    person nobody can page, or times that are backwards, past or too long."""
    if schedule_name not in config.schedules:
        have = ", ".join(config.schedules) or "none"
        raise OverrideError(f"no schedule {schedule_name!r} (have: {have})")
    if person not in config.people:
        raise OverrideError(f"{person!r} is not among the people the alerting can page")
    if starts_at.tzinfo is None or ends_at.tzinfo is None:
        raise OverrideError("the override's start and end need a time zone")
    if ends_at <= starts_at:
        raise OverrideError(f"the end ({ends_at:%Y-%m-%d %H:%M}) is not after the start")
    if ends_at <= now:
        raise OverrideError(f"the override ends in the past ({ends_at:%Y-%m-%d %H:%M %Z})")
    if ends_at - starts_at > MAX_OVERRIDE:
        raise OverrideError(f"an override lasts at most {MAX_OVERRIDE.days} days")
    if ends_at >= LATEST:
        raise OverrideError(f"the override must end before {LATEST:%Y}")
    row = ScheduleOverride(
        schedule=schedule_name,
        person=person,
        starts_at=starts_at,
        ends_at=ends_at,
        reason=(reason or "").strip() or None,
        created_by=by,
        created_at=now,
    )
    s.add(row)
    s.flush()
    audit(
        s,
        "override",
        via,
        now,
        actor=by,
        schedule=schedule_name,
        person=person,
        starts_at=starts_at.isoformat(),
        ends_at=ends_at.isoformat(),
        override_id=row.id,
    )
    log.warning(
        "schedule.override_added",
        schedule=schedule_name,
        person=person,
        starts_at=starts_at.isoformat(),
        ends_at=ends_at.isoformat(),
        by=by,
        via=via,
    )
    return row


def remove_override(
    s: Session, override_id: int, by: str, via: str, now: datetime
) -> tuple[ScheduleOverride, str]:
    """Take a stored override off the schedule, and audit it. One in force ends now
    (who was on call until now stays true in the history); one still to come is
    deleted. Returns the row as it was left (or was, if deleted) and "ended" or
    "deleted". ActionError: 404 no such override, 409 it has already ended."""
    row = s.get(ScheduleOverride, override_id)
    if row is None:
        raise ActionError(404, f"no override {override_id}")
    if row.ends_at <= now:
        raise ActionError(
            409,
            f"override {override_id} already ended at {row.ends_at:%Y-%m-%d %H:%M %Z}:"
            " there is nothing left to remove",
        )
    if row.starts_at < now:
        row.ends_at = now
        outcome = "ended"
    else:
        s.delete(row)
        outcome = "deleted"
    s.flush()
    audit(
        s,
        "override.removed",
        via,
        now,
        actor=by,
        schedule=row.schedule,
        person=row.person,
        starts_at=row.starts_at.isoformat(),
        ends_at=row.ends_at.isoformat(),
        override_id=override_id,
        outcome=outcome,
    )
    log.warning(
        "schedule.override_removed",
        schedule=row.schedule,
        person=row.person,
        override_id=override_id,
        outcome=outcome,
        by=by,
        via=via,
    )
    return row, outcome


def stored_overrides(
    s: Session, schedule_name: str | None = None, ending_after: datetime | None = None
) -> list[ScheduleOverride]:
    """Stored overrides (of one schedule, or all), oldest added first: the order
    they take precedence in (a later one beats an earlier one)."""
    query = select(ScheduleOverride).order_by(ScheduleOverride.id)
    if schedule_name is not None:
        query = query.where(ScheduleOverride.schedule == schedule_name)
    if ending_after is not None:
        query = query.where(ScheduleOverride.ends_at > ending_after)
    return list(s.scalars(query))


def effective_schedule(
    config: AlertingConfig, s: Session, name: str, now: datetime | None = None
) -> Schedule:
    """The configured schedule with its stored overrides on top (those that ended
    well before `now` are left out: they change nothing around it)."""
    base = schedule(config, name)
    rows = stored_overrides(s, name, ending_after=None if now is None else now - LOOK_BACK)
    if not rows:
        return base
    added = [
        Override(person=r.person, start=r.starts_at, end=r.ends_at, reason=r.reason) for r in rows
    ]
    return base.model_copy(update={"overrides": [*base.overrides, *added]})
