"""Silences and recurring maintenance windows: the pure rules for "is this alert
muted at T, and by what". No database and no clock; time comes in as arguments.

A ``Silence`` is a one-off: matchers, a start and an end, who made it and why
(Alertmanager's model: active from ``starts_at`` inclusive to ``ends_at`` exclusive).

A ``MaintenanceWindow`` recurs in an IANA time zone, on local wall-clock times:

* ``days`` lists the days a window starts on (``mon-fri`` ranges; every day if
  omitted). An ``end`` at or before ``start`` crosses midnight: ``22:00``-``02:00``
  belongs to the day it starts. ``end: "24:00"`` ends at midnight.
* Optional ``months``, ``days_of_month`` (negative counts from the month's end) and
  ``dates`` narrow the start days further; ``valid_from``/``valid_until`` bound the
  whole thing (naive values are local to the zone).
* Across DST the window keeps its wall-clock times: it runs from the first moment
  the local clock shows a time in [start, end) on a listed day to the last, so it is
  active exactly when the local time is inside the range. A start inside the
  spring-forward gap moves to the transition; on the fall-back day a 01:00-03:00
  window includes the repeated hour (three real hours). A window lying wholly
  inside the gap does not happen that day. (Only a window starting or ending in
  the middle of the repeated hour also covers a few minutes whose local time is
  outside its range, since a window never pauses and restarts.)
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from sentinel.alerting.matchers import Matcher, MatcherList, matches_all
from sentinel.alerting.schedules import (
    local_to_utc,
    parse_time_of_day,
    parse_weekdays,
    zone_info,
)

__all__ = ["MaintenanceWindow", "Silence", "SilenceState", "silenced_by"]

Interval = tuple[datetime, datetime]
SilenceState = Literal["pending", "active", "expired"]

_WEEK = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_MONTH_ALIASES = {name: i + 1 for i, name in enumerate(_MONTHS)} | {
    full: i + 1
    for i, full in enumerate(
        (
            "january", "february", "march", "april", "may", "june", "july",
            "august", "september", "october", "november", "december",
        )
    )
}  # fmt: skip
# How far next_window looks before giving up (covers a 29 February every 4 years).
_SEARCH_DAYS = 8 * 366
# Windows computed per (definition, local day) are kept: every alert of a storm
# asks about the same few days. Plain dict operations are safe across threads.
_WINDOW_CACHE_SIZE = 4096
_WINDOWS: dict[tuple[Any, date], Interval | None] = {}
_MISSING = object()


def _aware(value: datetime, what: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be an aware datetime, got naive {value.isoformat()}")
    return value.astimezone(UTC)


def _check_matchers(matchers: list[Matcher]) -> list[Matcher]:
    if not matchers:
        raise ValueError('at least one matcher is needed, like service="payments"')
    # Alertmanager's rule: otherwise the silence would also mute every alert that
    # simply lacks those labels, i.e. everything.
    if all(m.matches_empty() for m in matchers):
        raise ValueError(
            "at least one matcher must not match an empty label "
            f"({', '.join(map(str, matchers))} would mute every alert); "
            'to mute a whole service write service="payments"'
        )
    return matchers


class Silence(BaseModel):
    """Mutes the alerts its matchers select from ``starts_at`` up to ``ends_at``."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = None
    matchers: MatcherList
    starts_at: datetime
    ends_at: datetime
    created_by: str = Field(min_length=1)
    comment: str = Field(min_length=1)

    @field_validator("matchers")
    @classmethod
    def _matchers(cls, value: list[Matcher]) -> list[Matcher]:
        return _check_matchers(value)

    @field_validator("starts_at", "ends_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return _aware(value, "time")

    @field_validator("created_by", "comment")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value.strip()

    @model_validator(mode="after")
    def _order(self) -> Silence:
        if self.ends_at <= self.starts_at:
            raise ValueError(
                f"ends_at {self.ends_at.isoformat()} is not after "
                f"starts_at {self.starts_at.isoformat()}"
            )
        return self

    def state_at(self, at: datetime) -> SilenceState:
        t = _aware(at, "at")
        if t < self.starts_at:
            return "pending"
        return "active" if t < self.ends_at else "expired"

    def active_at(self, at: datetime) -> bool:
        return self.state_at(at) == "active"

    def matches(self, labels: Mapping[str, str]) -> bool:
        return matches_all(self.matchers, labels)


def _parse_month(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        if 1 <= value <= 12:
            return value
    elif isinstance(value, str):
        text = value.strip().lower()
        if text.isdigit() and 1 <= int(text) <= 12:
            return int(text)
        if text in _MONTH_ALIASES:
            return _MONTH_ALIASES[text]
    raise ValueError(f"unknown month {value!r} (use jan ... dec or 1 ... 12)")


def _parse_day_of_month(value: Any) -> int:
    try:
        day = int(str(value).strip())
    except ValueError:
        day = 0
    if not (1 <= abs(day) <= 31):
        raise ValueError(
            f"day of month must be 1 ... 31 or -1 ... -31 (from the end), got {value!r}"
        )
    return day


def _ranges(items: list[Any], parse: Any, what: str) -> list[int]:
    """``[1, "5-7"]`` -> ``[1, 5, 6, 7]`` for months and days of month."""
    out: list[int] = []
    for item in items:
        text = str(item).strip()
        # A leading "-" is a negative day of month, not a range.
        cut = text.find("-", 1)
        if isinstance(item, str) and cut > 0:
            lo, hi = parse(text[:cut]), parse(text[cut + 1 :])
            if hi < lo or (lo < 0) != (hi < 0):
                raise ValueError(f"{what} range {item!r} runs backwards or changes sign")
            out.extend(range(lo, hi + 1))
        else:
            out.append(parse(item))
    return out


class MaintenanceWindow(BaseModel):
    """A recurring window during which the alerts its matchers select are muted."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    matchers: MatcherList
    time_zone: str
    days: list[str] = Field(default_factory=lambda: list(_WEEK))
    start: str
    end: str
    months: list[int] | None = None
    days_of_month: list[int] | None = None
    dates: list[date] | None = None
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    comment: str | None = None

    @field_validator("matchers")
    @classmethod
    def _matchers(cls, value: list[Matcher]) -> list[Matcher]:
        return _check_matchers(value)

    @field_validator("time_zone")
    @classmethod
    def _zone_ok(cls, value: str) -> str:
        zone_info(value)
        return value

    @field_validator("days")
    @classmethod
    def _days(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("days must not be empty (omit it for every day)")
        return sorted(set(parse_weekdays(value)), key=_WEEK.index)

    # mode="before" so an unquoted YAML time (read as an int) gets the helpful message.
    @field_validator("start", mode="before")
    @classmethod
    def _start(cls, value: Any) -> str:
        parse_time_of_day(value)
        return value

    @field_validator("end", mode="before")
    @classmethod
    def _end(cls, value: Any) -> str:
        parse_time_of_day(value, allow_24=True)
        return value

    @field_validator("months", mode="before")
    @classmethod
    def _months(cls, value: Any) -> Any:
        if value is None:
            return None
        if not isinstance(value, list) or not value:
            raise ValueError("months must be a non-empty list like [jan, jul-aug] (or omitted)")
        return sorted(set(_ranges(value, _parse_month, "month")))

    @field_validator("days_of_month", mode="before")
    @classmethod
    def _days_of_month(cls, value: Any) -> Any:
        if value is None:
            return None
        if not isinstance(value, list) or not value:
            raise ValueError("days_of_month must be a non-empty list like [1, 15, -1]")
        return sorted(set(_ranges(value, _parse_day_of_month, "day of month")))

    @field_validator("dates")
    @classmethod
    def _dates(cls, value: list[date] | None) -> list[date] | None:
        if value is not None and not value:
            raise ValueError("dates must not be empty (omit it for any date)")
        return None if value is None else sorted(set(value))

    @model_validator(mode="after")
    def _shape(self) -> MaintenanceWindow:
        if self.start_minutes == self.end_minutes:
            raise ValueError(
                f"window {self.start}-{self.end} has zero length "
                '(use start "00:00", end "24:00" for a whole day)'
            )
        lo, hi = self._valid_range()
        if lo is not None and hi is not None and hi <= lo:
            raise ValueError("valid_until is not after valid_from")
        return self

    # ----------------------------------------------------------------- derived

    @property
    def zone(self) -> ZoneInfo:
        return zone_info(self.time_zone)

    @property
    def start_minutes(self) -> int:
        return parse_time_of_day(self.start)

    @property
    def end_minutes(self) -> int:
        return parse_time_of_day(self.end, allow_24=True)

    def _to_utc(self, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return local_to_utc(value, self.zone)
        return value.astimezone(UTC)

    def _valid_range(self) -> tuple[datetime | None, datetime | None]:
        return self._to_utc(self.valid_from), self._to_utc(self.valid_until)

    def _starts_on(self, day: date) -> bool:
        if _WEEK[day.weekday()] not in self.days:
            return False
        if self.months is not None and day.month not in self.months:
            return False
        if self.days_of_month is not None:
            next_month = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
            month_length = (next_month - timedelta(days=1)).day
            from_end = day.day - month_length - 1  # -1 on the month's last day
            if day.day not in self.days_of_month and from_end not in self.days_of_month:
                return False
        return self.dates is None or day in self.dates

    def window_on(self, day: date) -> Interval | None:
        """The UTC window starting on local ``day``, or None (not a start day, inside
        the DST gap, or outside valid_from/valid_until)."""
        # Keyed by the fields that shape the window, so copies and edits never
        # see another definition's windows.
        key = (
            self.time_zone,
            self.start,
            self.end,
            tuple(self.days),
            None if self.months is None else tuple(self.months),
            None if self.days_of_month is None else tuple(self.days_of_month),
            None if self.dates is None else tuple(self.dates),
            self.valid_from,
            self.valid_until,
        )
        cached = _WINDOWS.get((key, day), _MISSING)
        if cached is not _MISSING:
            return cached  # type: ignore[return-value]
        if len(_WINDOWS) >= _WINDOW_CACHE_SIZE:
            _WINDOWS.clear()  # crude but bounded; a storm asks about the same few days
        found = _WINDOWS[(key, day)] = self._compute_window(day)
        return found

    def _compute_window(self, day: date) -> Interval | None:
        if not self._starts_on(day):
            return None
        tz = self.zone
        midnight = datetime(day.year, day.month, day.day)
        start, end = self.start_minutes, self.end_minutes
        lo = local_to_utc(midnight + timedelta(minutes=start), tz)
        end_day = 0 if end > start else 1
        hi = _window_end_to_utc(midnight + timedelta(days=end_day, minutes=end), tz)
        valid_from, valid_until = self._valid_range()
        if valid_from is not None:
            lo = max(lo, valid_from)
        if valid_until is not None:
            hi = min(hi, valid_until)
        return (lo, hi) if lo < hi else None

    def _days_from(self, first: date) -> Iterator[date]:
        if self.dates is not None:
            yield from (d for d in self.dates if d >= first)
            return
        _, valid_until = self._valid_range()
        last = first + timedelta(days=_SEARCH_DAYS)
        if valid_until is not None:
            last = min(last, valid_until.astimezone(self.zone).date())
        day = first
        while day <= last:
            yield day
            day += timedelta(days=1)

    # ------------------------------------------------------------------ public

    def current_window(self, at: datetime) -> Interval | None:
        """The window in progress at ``at`` (UTC start, end), or None."""
        t = _aware(at, "at")
        today = t.astimezone(self.zone).date()
        # A window lasts under a wall-clock day, so only today's or yesterday's covers t.
        for day in (today - timedelta(days=1), today):
            window = self.window_on(day)
            if window is not None and window[0] <= t < window[1]:
                return window
        return None

    def active_at(self, at: datetime) -> bool:
        return self.current_window(at) is not None

    def next_window(self, after: datetime) -> Interval | None:
        """The window in progress at ``after``, or else the next one to start, as UTC
        (start, end); None when no window comes (past valid_until, dates used up)."""
        t = _aware(after, "after")
        first = t.astimezone(self.zone).date() - timedelta(days=1)
        for day in self._days_from(first):
            window = self.window_on(day)
            if window is not None and window[1] > t:
                return window
        return None

    def windows(self, start: datetime, end: datetime) -> list[Interval]:
        """Every window overlapping [start, end), in order (for calendars and UIs)."""
        a, b = _aware(start, "start"), _aware(end, "end")
        out: list[Interval] = []
        for day in self._days_from(a.astimezone(self.zone).date() - timedelta(days=1)):
            window = self.window_on(day)
            if window is None:
                continue
            if window[0] >= b:
                break
            if window[1] > a:
                out.append(window)
        return out

    def matches(self, labels: Mapping[str, str]) -> bool:
        return matches_all(self.matchers, labels)


def _window_end_to_utc(naive: datetime, tz: ZoneInfo) -> datetime:
    """Where a window ending at local ``naive`` ends: the last moment the wall clock
    is still before it. For an end inside the repeated fall-back hour that is its
    second occurrence; for an end exactly where the repetition starts (``02:00`` in
    Berlin) the first; in the spring-forward gap, the transition."""
    second = naive.replace(tzinfo=tz, fold=1).astimezone(UTC)
    if second.astimezone(tz).replace(tzinfo=None) == naive:
        just_before = (second - timedelta(microseconds=1)).astimezone(tz).replace(tzinfo=None)
        if just_before < naive:
            return second
    return local_to_utc(naive, tz)


def silenced_by(
    labels: Mapping[str, str],
    at: datetime,
    silences: Iterable[Silence],
    windows: Sequence[MaintenanceWindow] = (),
) -> Silence | MaintenanceWindow | None:
    """What mutes an alert with ``labels`` at ``at``: an active silence (the one that
    lasts longest, so "silenced until" is honest), else a maintenance window in
    progress (likewise), else None."""
    t = _aware(at, "at")
    active = [s for s in silences if s.starts_at <= t < s.ends_at and s.matches(labels)]
    if active:
        return max(active, key=lambda s: s.ends_at)
    best: tuple[datetime, MaintenanceWindow] | None = None
    for window in windows:
        if not window.matches(labels):
            continue
        current = window.current_window(t)
        if current is not None and (best is None or current[1] > best[0]):
            best = (current[1], window)
    return best[1] if best is not None else None
