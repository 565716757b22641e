"""The business-hours calendar that working-day targets count on (seed 002: on weekdays
9:00-18:00 someone is at the desk; nights, weekends and holidays are on-call only).

Business hours are local to the calendar's IANA zone; everything passed in and returned
is a timezone-aware datetime (results in UTC). A day's hours are computed in local time
and converted, so a daylight-saving change moves them with the clocks. Pure: no clock of
its own."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
# Holidays are finite, workdays are not empty: a search this long means a bug.
_MAX_DAYS_SCANNED = 366 * 200


def _aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got the naive {value.isoformat()}")
    return value.astimezone(UTC)


class BusinessCalendar(BaseModel):
    """Working days and hours in one zone. ``start``/``end`` are local "HH:MM", the
    same every working day (no overnight shifts); ``holidays`` are local dates."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    time_zone: str = "Europe/Moscow"
    workdays: list[Weekday] = Field(default_factory=lambda: ["mon", "tue", "wed", "thu", "fri"])
    start: str = "09:00"
    end: str = "18:00"
    holidays: list[date] = Field(default_factory=list)

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r}: use an IANA name such as Europe/Moscow"
            ) from None
        return value

    @field_validator("workdays")
    @classmethod
    def _workdays(cls, value: list[Weekday]) -> list[Weekday]:
        if not value:
            raise ValueError("at least one working day")
        if len(set(value)) != len(value):
            raise ValueError("a working day is listed twice")
        return value

    @field_validator("start", "end")
    @classmethod
    def _hhmm(cls, value: str) -> str:
        if not _HHMM.match(value):
            raise ValueError(f"{value!r}: use 24-hour HH:MM, e.g. 09:00")
        return value

    @model_validator(mode="after")
    def _order(self) -> BusinessCalendar:
        if self.start_time >= self.end_time:
            raise ValueError(f"start {self.start} must be before end {self.end} (same day)")
        return self

    # --- derived ----------------------------------------------------------------------

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    @cached_property
    def start_time(self) -> time:
        return time.fromisoformat(self.start)

    @cached_property
    def end_time(self) -> time:
        return time.fromisoformat(self.end)

    @cached_property
    def _weekdays(self) -> frozenset[int]:
        return frozenset(WEEKDAYS.index(d) for d in self.workdays)

    @cached_property
    def _holidays(self) -> frozenset[date]:
        return frozenset(self.holidays)

    @property
    def workday_length(self) -> timedelta:
        """The length of one working day (9 h for 09:00-18:00): what "1 working day"
        of business time means."""
        day = date(2000, 1, 3)
        return datetime.combine(day, self.end_time) - datetime.combine(day, self.start_time)

    def is_workday(self, day: date) -> bool:
        return day.weekday() in self._weekdays and day not in self._holidays

    def hours_of(self, day: date) -> tuple[datetime, datetime] | None:
        """The business hours of a local date in UTC, or None on a day off."""
        if not self.is_workday(day):
            return None
        opens = datetime.combine(day, self.start_time, tzinfo=self.zone).astimezone(UTC)
        closes = datetime.combine(day, self.end_time, tzinfo=self.zone).astimezone(UTC)
        return opens, closes

    def _local_date(self, at: datetime) -> date:
        return at.astimezone(self.zone).date()

    def _intervals_from(self, day: date) -> Iterator[tuple[datetime, datetime]]:
        for offset in range(_MAX_DAYS_SCANNED):
            hours = self.hours_of(day + timedelta(days=offset))
            if hours is not None:
                yield hours
        raise RuntimeError("no working day found in 200 years")  # pragma: no cover

    # --- the arithmetic ---------------------------------------------------------------

    def is_business_time(self, at: datetime) -> bool:
        at = _aware(at, "at")
        hours = self.hours_of(self._local_date(at))
        return hours is not None and hours[0] <= at < hours[1]

    def add_business_time(self, start: datetime, delta: timedelta) -> datetime:
        """The earliest moment by which ``delta`` of business time has passed since
        ``start``: outside business hours the count waits for the next opening, and a
        target that fills the day exactly is due at its close (18:00, not 09:00 of the
        next working day)."""
        start = _aware(start, "start")
        if delta < timedelta(0):
            raise ValueError(f"delta must not be negative, got {delta}")
        if delta == timedelta(0):
            return start
        remaining = delta
        for opens, closes in self._intervals_from(self._local_date(start)):
            if closes <= start:
                continue
            cursor = max(start, opens)
            if cursor + remaining <= closes:
                return cursor + remaining
            remaining -= closes - cursor
        raise AssertionError("unreachable")  # pragma: no cover

    def business_time_between(self, a: datetime, b: datetime) -> timedelta:
        """Business time from ``a`` to ``b``; negative when ``b`` is before ``a`` (how
        far past a due time, for instance)."""
        a, b = _aware(a, "a"), _aware(b, "b")
        if b < a:
            return -self.business_time_between(b, a)
        total = timedelta(0)
        for opens, closes in self._intervals_from(self._local_date(a)):
            if opens >= b:
                break
            overlap = min(closes, b) - max(opens, a)
            if overlap > timedelta(0):
                total += overlap
        return total

    def add_business_days(self, start: datetime, days: int) -> datetime:
        """``days`` working days after ``start``: the same local time that many working
        days later when ``start`` is in business hours; from outside them, the count
        starts at the next opening, so the result is the close of the last counted day
        (5 working days from Saturday: Friday 18:00)."""
        if days < 0:
            raise ValueError(f"days must not be negative, got {days}")
        return self.add_business_time(start, days * self.workday_length)

    def next_opening(self, at: datetime) -> datetime:
        """``at`` itself in business hours, else when business hours next begin."""
        at = _aware(at, "at")
        for opens, closes in self._intervals_from(self._local_date(at)):
            if at < closes:
                return max(at, opens)
        raise AssertionError("unreachable")  # pragma: no cover
