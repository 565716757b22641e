"""The reports the console shows: postmortems' incident report over a period (with its
incidents, MTTA and MTTR per week as chart columns) and the translator's daily and
weekly figures of seed 000 §9. Each is computed by its component's own function; this
module only reads them and shapes the charts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from common.logs import get_logger
from postmortems import reports
from postmortems.service import Postmortems
from translator.ops.report import DailyReport, WeeklyReport, daily_report, weekly_report

log = get_logger(__name__)

MAX_DAYS = 366  # the longest period one report page covers


@dataclass
class TranslatorFigures:
    """Seed 000 §9 for one day and the week ending on it; `error` when unreadable."""

    daily: DailyReport | None
    weekly: WeeklyReport | None
    error: str | None = None


def midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def incident_report(pm: Postmortems, start: date, end: date, service: str | None) -> Any:
    """Postmortems' report of the incidents that started in [start, end), by week."""
    return reports.build(pm, midnight(start), midnight(end), service=service, period="week")


def weekly_chart(report: Any, start: date, end: date) -> dict[str, Any]:
    """Incidents, MTTA and MTTR (minutes) per week, every week of the period shown (a
    quiet week is a 0, not a gap)."""
    rows = {row.period_start: row for row in report.periods}
    first = reports.period_start(midnight(start), "week")
    weeks = []
    while first < end:
        weeks.append(first)
        first += timedelta(days=7)

    def minutes(value: float | None) -> float | None:
        return None if value is None else round(value / 60, 2)

    return {
        "unit": "incidents · minutes",
        "labels": ["incidents", "MTTA (min)", "MTTR (min)"],
        "columns": [
            [midnight(w).timestamp() for w in weeks],
            [rows[w].incidents if w in rows else 0 for w in weeks],
            [minutes(rows[w].mtta_seconds) if w in rows else None for w in weeks],
            [minutes(rows[w].mttr_seconds) if w in rows else None for w in weeks],
        ],
    }


def translator_figures(engine: Engine, day: date) -> TranslatorFigures:
    try:
        return TranslatorFigures(daily_report(engine, day), weekly_report(engine, day))
    except SQLAlchemyError as exc:
        # The page says what failed; the statement and URL go to the log only.
        log.warning("console.translator_report_failed", error=str(exc).splitlines()[0])
        return TranslatorFigures(
            None, None, f"reading the translator's database failed ({type(exc).__name__})"
        )


def files_chart(weekly: WeeklyReport) -> dict[str, Any]:
    """Files created per day and how many of them were translated."""
    return {
        "unit": "files",
        "labels": ["files created", "completed"],
        "columns": [
            [midnight(d.day).timestamp() for d in weekly.days],
            [d.total_files for d in weekly.days],
            [d.completed_files for d in weekly.days],
        ],
    }
