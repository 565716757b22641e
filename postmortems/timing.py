"""Phases, SLA targets and due dates of one incident on the configured
business-hours calendar: one seam over the pure ``postmortems.sla`` and
``postmortems.calendar``, so records, views and reports ask one object."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from postmortems import sla
from postmortems.calendar import BusinessCalendar
from postmortems.settings import PostmortemSettings

if TYPE_CHECKING:
    from postmortems.schemas import SlaOut


class Timing:
    def __init__(self, calendar: BusinessCalendar) -> None:
        self.calendar = calendar

    @classmethod
    def from_settings(cls, settings: PostmortemSettings) -> Timing:
        return cls(
            BusinessCalendar(
                time_zone=settings.time_zone,
                start=settings.workday_start,
                end=settings.workday_end,
                holidays=settings.holidays,
            )
        )

    def phases(
        self,
        started_at: datetime,
        detected_at: datetime,
        resolved_at: datetime | None,
        now: datetime,
    ) -> tuple[timedelta | None, timedelta | None]:
        """(passive, active): started → detected, detected → resolved (or now)."""
        result = sla.phases(started_at, detected_at, resolved_at, now)
        return result.passive, result.active

    def sla(
        self,
        severity: str,
        detected_at: datetime,
        acknowledged_at: datetime | None,
        resolved_at: datetime | None,
        now: datetime,
    ) -> SlaOut:
        from postmortems.schemas import SlaOut

        status = sla.sla_status(
            str(severity), detected_at, acknowledged_at, resolved_at, now, self.calendar
        )
        return SlaOut(
            targets=status.targets,
            response_due=status.response_due,
            resolution_due=status.resolution_due,
            response_breached=status.response_breached,
            resolution_breached=status.resolution_breached,
        )

    def postmortem_due(self, severity: str, resolved_at: datetime | None) -> datetime | None:
        return sla.postmortem_due(str(severity), resolved_at, self.calendar)
