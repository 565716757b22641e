"""The summary report over a period (seed 002): incidents by class, severity and
service; passive and active phases as median and p90; time to acknowledge; SLA
breaches; postmortems and action items still owed; and the change-failure rate
of the release gate's releases when its database is configured."""

from __future__ import annotations

import math
from collections import Counter
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel

from common.clock import ensure_utc
from common.logs import get_logger
from postmortems.markdown import duration
from postmortems.models import DONE_ACTION_STATUSES
from postmortems.schemas import IncidentDetail

if TYPE_CHECKING:
    from postmortems.service import Postmortems

log = get_logger("postmortems.reports")

Period = Literal["day", "week", "month"]


class Stats(BaseModel):
    """Durations in seconds over the incidents that have them."""

    count: int
    median_seconds: float | None
    p90_seconds: float | None
    max_seconds: float | None


class PeriodRow(BaseModel):
    period_start: date
    incidents: int
    by_severity: dict[str, int]
    by_class: dict[str, int]
    # Means over the period's incidents that have them: detected -> acknowledged (MTTA)
    # and detected -> resolved (MTTR, the active phase).
    mtta_seconds: float | None = None
    mttr_seconds: float | None = None


class SlaBreaches(BaseModel):
    response: int
    resolution: int
    incident_ids: list[int]


class ChangeFailure(BaseModel):
    releases: int
    failed: int
    rate: float | None
    # Incidents of the period that name a release (whatever the gate recorded).
    incidents_with_release: int


class Report(BaseModel):
    start: datetime
    end: datetime
    service: str | None
    period: str
    incidents: int
    by_class: dict[str, int]
    by_severity: dict[str, int]
    by_service: dict[str, int]
    by_status: dict[str, int]
    periods: list[PeriodRow]
    passive_phase: Stats
    active_phase: Stats
    time_to_acknowledge: Stats
    sla_breaches: SlaBreaches
    postmortems_complete: int
    postmortems_overdue: list[int]
    actions_open: int
    actions_overdue: list[int]
    change_failure: ChangeFailure | None
    change_failure_note: str | None = None


def percentile(values: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def stats(values: list[float]) -> Stats:
    return Stats(
        count=len(values),
        median_seconds=percentile(values, 0.5),
        p90_seconds=percentile(values, 0.9),
        max_seconds=max(values) if values else None,
    )


def period_start(at: datetime, period: Period) -> date:
    day = at.date()
    if period == "week":
        return day - timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    return day


def build(
    pm: Postmortems,
    start: datetime,
    end: datetime,
    *,
    service: str | None = None,
    period: Period = "week",
) -> Report:
    """The report of incidents that started in [start, end)."""
    service_name = service
    start, end = ensure_utc(start), ensure_utc(end)
    now = pm.clock.now()
    incidents = pm.incidents_between(start, end, service=service_name)
    rows: dict[date, list[IncidentDetail]] = {}
    for i in incidents:
        rows.setdefault(period_start(i.started_at, period), []).append(i)
    breached = [i for i in incidents if i.sla.response_breached or i.sla.resolution_breached]
    today = now.date()
    pm_overdue = [
        i.id
        for i in incidents
        if i.postmortem_due is not None
        and i.postmortem_due <= now
        and not (i.postmortem and i.postmortem.complete)
    ]
    actions = [a for i in incidents for a in i.actions]
    live = [a for a in actions if a.status not in DONE_ACTION_STATUSES]
    change, note = _change_failure(pm, start, end, service_name, incidents)
    return Report(
        start=start,
        end=end,
        service=service_name,
        period=period,
        incidents=len(incidents),
        by_class=dict(Counter(i.incident_class for i in incidents).most_common()),
        by_severity=dict(sorted(Counter(i.severity for i in incidents).items())),
        by_service=dict(Counter(i.service for i in incidents).most_common()),
        by_status=dict(Counter(i.status for i in incidents).most_common()),
        periods=[
            PeriodRow(
                period_start=key,
                incidents=len(group),
                by_severity=dict(sorted(Counter(i.severity for i in group).items())),
                by_class=dict(Counter(i.incident_class for i in group).most_common()),
                mtta_seconds=_mean([_ack_seconds(i) for i in group]),
                mttr_seconds=_mean([_resolve_seconds(i) for i in group]),
            )
            for key, group in sorted(rows.items())
        ],
        passive_phase=stats(
            [i.passive_seconds for i in incidents if i.passive_seconds is not None]
        ),
        active_phase=stats(
            [i.active_seconds for i in incidents if i.active_seconds is not None and i.resolved_at]
        ),
        time_to_acknowledge=stats([s for i in incidents if (s := _ack_seconds(i)) is not None]),
        sla_breaches=SlaBreaches(
            response=sum(i.sla.response_breached for i in incidents),
            resolution=sum(i.sla.resolution_breached for i in incidents),
            incident_ids=[i.id for i in breached],
        ),
        postmortems_complete=sum(bool(i.postmortem and i.postmortem.complete) for i in incidents),
        postmortems_overdue=pm_overdue,
        actions_open=len(live),
        actions_overdue=[a.id for a in live if a.due_date < today],
        change_failure=change,
        change_failure_note=note,
    )


def _ack_seconds(i: IncidentDetail) -> float | None:
    if i.acknowledged_at is None:
        return None
    return (i.acknowledged_at - i.detected_at).total_seconds()


def _resolve_seconds(i: IncidentDetail) -> float | None:
    if i.resolved_at is None:
        return None
    return (i.resolved_at - i.detected_at).total_seconds()


def _mean(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


def _change_failure(
    pm: Postmortems,
    start: datetime,
    end: datetime,
    service_name: str | None,
    incidents: list[IncidentDetail],
) -> tuple[ChangeFailure | None, str | None]:
    with_release = sum(1 for i in incidents if i.release_id)
    if not pm.settings.gate_database_url:
        return None, "POSTMORTEM_GATE_DATABASE_URL is not set: no release records"
    try:
        from release_gate import history
        from release_gate.db import Database as GateDatabase
    except ImportError as exc:
        return None, f"the release gate's history is not available: {exc}"
    db = GateDatabase(pm.settings.gate_database_url)
    try:
        cfr = history.change_failure_rate(db, start, end, service=service_name)
    except Exception as exc:  # noqa: BLE001 - a report without this figure beats no report
        log.warning("report.change_failure_failed", error=str(exc))
        return None, f"reading releases failed: {type(exc).__name__}: {exc}"
    finally:
        db.dispose()
    return (
        ChangeFailure(
            releases=cfr.releases,
            failed=cfr.failed,
            rate=cfr.rate,
            incidents_with_release=with_release,
        ),
        None,
    )


def render_text(report: Report) -> str:
    """The report for a terminal or a chat message."""
    scope = f" for {report.service}" if report.service else ""
    lines = [
        f"Incidents {report.start:%Y-%m-%d} – {report.end:%Y-%m-%d}{scope}: {report.incidents}",
        "  by severity: " + _pairs(report.by_severity),
        "  by class:    " + _pairs(report.by_class),
        "  by service:  " + _pairs(report.by_service),
        f"  passive phase: median {duration(report.passive_phase.median_seconds)}, "
        f"p90 {duration(report.passive_phase.p90_seconds)}",
        f"  active phase:  median {duration(report.active_phase.median_seconds)}, "
        f"p90 {duration(report.active_phase.p90_seconds)}",
        f"  time to acknowledge: median {duration(report.time_to_acknowledge.median_seconds)}, "
        f"p90 {duration(report.time_to_acknowledge.p90_seconds)}",
        f"  SLA breaches: {report.sla_breaches.response} response, "
        f"{report.sla_breaches.resolution} resolution",
        f"  postmortems complete: {report.postmortems_complete}/{report.incidents}; "
        f"overdue: {len(report.postmortems_overdue)}",
        f"  action items open: {report.actions_open}; overdue: {len(report.actions_overdue)}",
    ]
    if report.change_failure is not None:
        cf = report.change_failure
        rate = "—" if cf.rate is None else f"{cf.rate:.1%}"
        lines.append(f"  change-failure rate: {rate} ({cf.failed} of {cf.releases} releases)")
    elif report.change_failure_note:
        lines.append(f"  change-failure rate: n/a ({report.change_failure_note})")
    for row in report.periods:
        lines.append(f"  {row.period_start}: {row.incidents} " + _pairs(row.by_severity))
    return "\n".join(lines)


def _pairs(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items()) or "—"
