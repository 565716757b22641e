"""On-call schedules: layered rotations with restrictions and overrides, resolved
into one timeline (who is on call, shifts, gaps, iCal export).

Time rules (the part most schedulers get wrong):

* Everything public is in aware datetimes; results are UTC. The module has no
  clock: callers pass the instant they care about.
* ``daily``, ``weekly`` and ``custom`` ``every_days`` handoffs happen at the same
  LOCAL wall-clock time in the layer's zone, so across a DST change a daily shift
  lasts 23 h or 25 h and a weekly one 167 h or 169 h. ``custom`` ``every_hours``
  handoffs are fixed elapsed durations (a 12 h shift is always 12 h).
* A local time that does not exist (spring-forward gap) moves forward to the first
  valid instant after the gap, i.e. the transition itself. A local time that occurs
  twice (fall-back) means its first occurrence (``fold=0``).
* Restrictions are windows in the schedule's zone, built from local wall-clock
  times by the same two rules.

Precedence: layers are listed bottom first; a later layer beats an earlier one
wherever it has someone on call. Overrides beat every layer (a later override
beats an earlier one). Nobody on call is a gap, and ``gaps`` reports it.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from common.yaml_config import load_yaml_model, parse_yaml_model

__all__ = [
    "Layer",
    "OnCall",
    "Override",
    "Restriction",
    "Rotation",
    "Schedule",
    "Shift",
    "gaps",
    "load_schedule",
    "local_to_utc",
    "parse_schedule",
    "parse_time_of_day",
    "parse_weekdays",
    "shifts",
    "to_ical",
    "who_is_on_call",
    "zone_info",
]

Interval = tuple[datetime, datetime]

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY_ALIASES = {name: i for i, name in enumerate(_DAYS)} | {
    full: i
    for i, full in enumerate(
        ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
    )
}
# who_is_on_call widens its look-around until the shift is not cut by the window;
# past this a shift is reported clipped (a one-person 24/7 layer never ends).
_MAX_LOOKAROUND = timedelta(days=400)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ValueError(
            f"unknown time zone {name!r} (expected an IANA name like 'Europe/Moscow')"
        ) from exc


def _check_zone(name: str | None) -> str | None:
    if name is not None:
        _zone(name)
    return name


def local_to_utc(naive: datetime, tz: ZoneInfo) -> datetime:
    """Map a local wall-clock time to UTC: gap times go to the first valid instant
    after the gap, ambiguous times to their first occurrence (fold=0)."""
    first = naive.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if first.astimezone(tz).replace(tzinfo=None) == naive:
        return first
    # In a gap fold=0 and fold=1 land on either side of the transition; bisect
    # whole seconds between them (zone transitions fall on whole seconds).
    other = naive.replace(tzinfo=tz, fold=1).astimezone(UTC)
    lo_dt, hi_dt = sorted((first, other))
    lo, hi = math.floor(lo_dt.timestamp()), math.ceil(hi_dt.timestamp())
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid, UTC).astimezone(tz).replace(tzinfo=None) > naive:
            hi = mid
        else:
            lo = mid
    return datetime.fromtimestamp(hi, UTC)


def _require_aware(value: datetime, what: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be an aware datetime, got naive {value.isoformat()}")
    return value.astimezone(UTC)


def _parse_minutes(value: Any, allow_24: bool) -> int:
    if not isinstance(value, str):
        # YAML 1.1 reads an unquoted 18:00 as the number 1080; refuse to guess.
        raise ValueError(f"time of day must be a quoted 'HH:MM' string, got {value!r}")
    parts = value.strip().split(":")
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise ValueError(f"time of day must look like 'HH:MM', got {value!r}")
    hours, minutes = int(parts[0]), int(parts[1])
    if minutes > 59 or hours > 24 or (hours == 24 and (minutes or not allow_24)):
        raise ValueError(f"time of day out of range: {value!r}")
    return hours * 60 + minutes


def _parse_day(value: str) -> int:
    day = _DAY_ALIASES.get(value.strip().lower())
    if day is None:
        raise ValueError(f"unknown weekday {value!r} (use mon, tue, ... sun)")
    return day


def parse_weekdays(items: list[str]) -> list[str]:
    """``["mon-fri", "sun"]`` -> short day names; ranges may wrap (``fri-mon``)."""
    out: list[str] = []
    for item in items:
        if "-" in item:
            lo, hi = (_parse_day(p) for p in item.split("-", 1))
            span = (hi - lo) % 7
            out.extend(_DAYS[(lo + i) % 7] for i in range(span + 1))
        else:
            out.append(_DAYS[_parse_day(item)])
    return out


def zone_info(name: str) -> ZoneInfo:
    """The IANA zone, or a ValueError that says what a zone name looks like."""
    return _zone(name)


def parse_time_of_day(value: Any, allow_24: bool = False) -> int:
    """Minutes after midnight of a quoted ``"HH:MM"`` (``"24:00"`` only with allow_24)."""
    return _parse_minutes(value, allow_24)


# --------------------------------------------------------------------------- models


class Restriction(BaseModel):
    """A window when the layer may be on call, in the schedule's zone.

    ``days`` lists the days the window starts on (``mon-fri`` ranges allowed;
    omitted = every day). ``end`` at or before ``start`` crosses midnight
    (``18:00``-``09:00``); ``end: "24:00"`` ends at midnight. With ``end_day`` the
    window spans days: ``days: [fri], start: "18:00", end_day: mon, end: "09:00"``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    days: list[str] | None = None
    start: str
    end: str
    end_day: str | None = None

    @field_validator("days")
    @classmethod
    def _days(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        if not value:
            raise ValueError("days must not be empty (omit it for every day)")
        return parse_weekdays(value)

    # mode="before" so an unquoted YAML time (an int) gets the helpful message.
    @field_validator("start", mode="before")
    @classmethod
    def _start(cls, value: Any) -> str:
        _parse_minutes(value, allow_24=False)
        return value

    @field_validator("end", mode="before")
    @classmethod
    def _end(cls, value: Any) -> str:
        _parse_minutes(value, allow_24=True)
        return value

    @field_validator("end_day")
    @classmethod
    def _end_day(cls, value: str | None) -> str | None:
        return None if value is None else _DAYS[_parse_day(value)]

    @model_validator(mode="after")
    def _length(self) -> Restriction:
        start, end = self.start_minutes, self.end_minutes
        if self.end_day is None:
            if start == end:
                raise ValueError(f"restriction {self.start}-{self.end} has zero length")
        else:
            if self.days is None or len(self.days) != 1:
                raise ValueError("a restriction with end_day needs exactly one start day")
            if self.days[0] == self.end_day and start == end:
                raise ValueError(
                    f"restriction {self.days[0]} {self.start} - {self.end_day} {self.end} "
                    "has zero length"
                )
        return self

    @property
    def start_minutes(self) -> int:
        return _parse_minutes(self.start, allow_24=False)

    @property
    def end_minutes(self) -> int:
        return _parse_minutes(self.end, allow_24=True)

    def windows(self, tz: ZoneInfo, first: date, last: date) -> list[Interval]:
        """UTC windows for start days from ``first`` to ``last`` inclusive."""
        days = {_DAYS.index(d) for d in self.days} if self.days else set(range(7))
        start, end = self.start_minutes, self.end_minutes
        out: list[Interval] = []
        day = first
        while day <= last:
            weekday = day.weekday()
            if weekday in days:
                if self.end_day is None:
                    offset = 0 if end > start else 1
                else:
                    offset = (_DAYS.index(self.end_day) - weekday) % 7
                    if offset == 0 and end <= start:
                        offset = 7
                midnight = datetime(day.year, day.month, day.day)
                lo = local_to_utc(midnight + timedelta(minutes=start), tz)
                hi = local_to_utc(midnight + timedelta(days=offset, minutes=end), tz)
                if lo < hi:  # a window inside a DST gap vanishes
                    out.append((lo, hi))
            day += timedelta(days=1)
        return out


class Rotation(BaseModel):
    """Participants take turns from ``start`` (local time in the layer's zone; an
    aware value is converted to it). Nobody from the layer is on call before it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    participants: list[str]
    start: datetime
    handoff: Literal["daily", "weekly", "custom"] = "weekly"
    every_hours: int | None = Field(default=None, gt=0)
    every_days: int | None = Field(default=None, gt=0)

    @field_validator("participants")
    @classmethod
    def _participants(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("participants must not be empty")
        if any(not p.strip() for p in value):
            raise ValueError("participant ids must not be blank")
        return value

    @model_validator(mode="after")
    def _handoff(self) -> Rotation:
        given = [n for n in ("every_hours", "every_days") if getattr(self, n) is not None]
        if self.handoff == "custom" and len(given) != 1:
            raise ValueError("custom handoff needs exactly one of every_hours, every_days")
        if self.handoff != "custom" and given:
            raise ValueError(f"{given[0]} only applies to handoff: custom")
        return self

    @property
    def period_days(self) -> int | None:
        if self.handoff == "daily":
            return 1
        if self.handoff == "weekly":
            return 7
        return self.every_days


class Layer(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    rotation: Rotation
    # Zone of the rotation's start and handoffs; the schedule's zone if omitted.
    time_zone: str | None = None
    restrictions: list[Restriction] = Field(default_factory=list)
    response_minutes: int | None = Field(default=None, gt=0)

    @field_validator("time_zone")
    @classmethod
    def _zone_ok(cls, value: str | None) -> str | None:
        return _check_zone(value)


class Override(BaseModel):
    """``person`` is on call from ``start`` to ``end``; naive times are local to
    the schedule's zone."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    person: str = Field(min_length=1)
    start: datetime
    end: datetime
    reason: str | None = None

    @model_validator(mode="after")
    def _order(self) -> Override:
        # Mixed naive/aware pairs need the schedule's zone; Schedule checks those.
        if (self.start.tzinfo is None) == (self.end.tzinfo is None) and self.end <= self.start:
            raise ValueError(
                f"override end {self.end.isoformat()} is not after start {self.start.isoformat()}"
            )
        return self

    def interval(self, tz: ZoneInfo) -> Interval:
        def conv(value: datetime) -> datetime:
            if value.tzinfo is None:
                return local_to_utc(value, tz)
            return value.astimezone(UTC)

        return conv(self.start), conv(self.end)


class Schedule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    time_zone: str
    layers: list[Layer] = Field(min_length=1)
    overrides: list[Override] = Field(default_factory=list)

    @field_validator("time_zone")
    @classmethod
    def _zone_ok(cls, value: str) -> str:
        _zone(value)
        return value

    @field_validator("layers")
    @classmethod
    def _unique_layers(cls, value: list[Layer]) -> list[Layer]:
        seen: set[str] = set()
        for layer in value:
            if layer.name in seen:
                raise ValueError(f"duplicate layer name {layer.name!r}")
            seen.add(layer.name)
        return value

    @model_validator(mode="after")
    def _overrides_ordered(self) -> Schedule:
        tz = self.zone
        for i, override in enumerate(self.overrides):
            start, end = override.interval(tz)
            if end <= start:
                raise ValueError(f"overrides.{i}: end is not after start in {self.time_zone}")
        return self

    @property
    def zone(self) -> ZoneInfo:
        return _zone(self.time_zone)


def parse_schedule(text: str, source: str = "<string>") -> Schedule:
    """Parse YAML; raises ``ConfigError`` naming source, line and field."""
    return parse_yaml_model(text, Schedule, source=source)


def load_schedule(path: str | Path) -> Schedule:
    return load_yaml_model(path, Schedule)


# ------------------------------------------------------------------- resolution


@dataclass(frozen=True)
class Shift:
    """A stretch of the resolved timeline. ``layer`` is ``"override"`` for overrides."""

    person: str
    layer: str
    start: datetime
    end: datetime
    override: bool = False
    response_minutes: int | None = None


@dataclass(frozen=True)
class OnCall:
    person: str
    layer: str
    start: datetime
    end: datetime
    override: bool = False
    response_minutes: int | None = None


OVERRIDE_LAYER = "override"


class _RotationClock:
    """Handoff instants of one rotation: boundary(k) starts participant k mod n."""

    def __init__(self, rotation: Rotation, tz: ZoneInfo) -> None:
        self.tz = tz
        start = rotation.start
        if start.tzinfo is not None:
            start = start.astimezone(tz).replace(tzinfo=None)
        self.start_local = start
        self.start_utc = local_to_utc(start, tz)
        self.days = rotation.period_days
        self.hours = rotation.every_hours

    def boundary(self, k: int) -> datetime:
        if self.days is not None:
            # Step in local wall-clock days so handoffs keep their local time.
            return local_to_utc(self.start_local + timedelta(days=k * self.days), self.tz)
        assert self.hours is not None
        return self.start_utc + timedelta(hours=k * self.hours)

    def index_at(self, at: datetime) -> int:
        if self.days is not None:
            local = at.astimezone(self.tz).replace(tzinfo=None)
            k = (local - self.start_local) // timedelta(days=self.days)
        else:
            assert self.hours is not None
            k = (at - self.start_utc) // timedelta(hours=self.hours)
        while self.boundary(k) > at:
            k -= 1
        while self.boundary(k + 1) <= at:
            k += 1
        return k


def _union(intervals: list[Interval]) -> list[Interval]:
    out: list[Interval] = []
    for lo, hi in sorted(intervals):
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


@dataclass(frozen=True)
class _Piece:
    start: datetime
    end: datetime
    person: str


def _layer_pieces(layer: Layer, sched_tz: ZoneInfo, a: datetime, b: datetime) -> list[_Piece]:
    tz = _zone(layer.time_zone) if layer.time_zone else sched_tz
    clock = _RotationClock(layer.rotation, tz)
    people = layer.rotation.participants
    pieces: list[_Piece] = []
    t = max(a, clock.start_utc)  # nobody from this layer before the rotation starts
    if t >= b:
        return pieces
    k = clock.index_at(t)
    lo = clock.boundary(k)
    while lo < b:
        hi = clock.boundary(k + 1)
        if max(lo, a) < min(hi, b):
            pieces.append(_Piece(max(lo, a), min(hi, b), people[k % len(people)]))
        k, lo = k + 1, hi
    if not layer.restrictions:
        return pieces
    # Windows may start up to a week before a (end_day spans), so look back 8 days.
    first = a.astimezone(sched_tz).date() - timedelta(days=8)
    last = b.astimezone(sched_tz).date() + timedelta(days=1)
    allowed = _union([w for r in layer.restrictions for w in r.windows(sched_tz, first, last)])
    masked: list[_Piece] = []
    j = 0
    for piece in pieces:
        while j < len(allowed) and allowed[j][1] <= piece.start:
            j += 1
        i = j
        while i < len(allowed) and allowed[i][0] < piece.end:
            lo2, hi2 = max(piece.start, allowed[i][0]), min(piece.end, allowed[i][1])
            if lo2 < hi2:
                masked.append(_Piece(lo2, hi2, piece.person))
            i += 1
    return masked


def _resolve(schedule: Schedule, a: datetime, b: datetime) -> list[Shift]:
    tz = schedule.zone
    # Sources bottom to top, each a sorted list of non-overlapping pieces.
    sources: list[tuple[str, bool, int | None, list[_Piece]]] = [
        (layer.name, False, layer.response_minutes, _layer_pieces(layer, tz, a, b))
        for layer in schedule.layers
    ]
    for override in schedule.overrides:
        lo, hi = override.interval(tz)
        lo, hi = max(lo, a), min(hi, b)
        pieces = [_Piece(lo, hi, override.person)] if lo < hi else []
        sources.append((OVERRIDE_LAYER, True, None, pieces))
    points = sorted({a, b} | {t for *_, ps in sources for p in ps for t in (p.start, p.end)})
    cursors = [0] * len(sources)
    out: list[Shift] = []
    for lo, hi in zip(points, points[1:], strict=False):
        chosen: Shift | None = None
        for idx in range(len(sources) - 1, -1, -1):
            name, is_override, response, pieces = sources[idx]
            c = cursors[idx]
            while c < len(pieces) and pieces[c].end <= lo:
                c += 1
            cursors[idx] = c
            if chosen is None and c < len(pieces) and pieces[c].start <= lo:
                chosen = Shift(pieces[c].person, name, lo, hi, is_override, response)
        if chosen is None:
            continue
        prev = out[-1] if out else None
        if (
            prev is not None
            and prev.end == chosen.start
            and (prev.person, prev.layer, prev.override)
            == (chosen.person, chosen.layer, chosen.override)
        ):
            out[-1] = Shift(
                prev.person, prev.layer, prev.start, hi, prev.override, prev.response_minutes
            )
        else:
            out.append(chosen)
    return out


def shifts(schedule: Schedule, start: datetime, end: datetime) -> list[Shift]:
    """The resolved timeline in [start, end), clipped to the window. Adjacent
    stretches of the same person from the same layer (or override) are merged."""
    a, b = _require_aware(start, "start"), _require_aware(end, "end")
    if b <= a:
        return []
    return _resolve(schedule, a, b)


def gaps(schedule: Schedule, start: datetime, end: datetime) -> list[Interval]:
    """Stretches of [start, end) when nobody is on call."""
    a, b = _require_aware(start, "start"), _require_aware(end, "end")
    out: list[Interval] = []
    cursor = a
    for shift in shifts(schedule, a, b):
        if shift.start > cursor:
            out.append((cursor, shift.start))
        cursor = shift.end
    if cursor < b:
        out.append((cursor, b))
    return out


def who_is_on_call(schedule: Schedule, at: datetime) -> OnCall | None:
    """Who is on call at ``at``, with the whole resolved shift around it (clipped to
    400 days either side for shifts that never end)."""
    t = _require_aware(at, "at")
    span = timedelta(days=8)
    while True:
        a, b = t - span, t + span
        covering = next((s for s in _resolve(schedule, a, b) if s.start <= t < s.end), None)
        if covering is None:
            return None
        if (a < covering.start and covering.end < b) or span >= _MAX_LOOKAROUND:
            return OnCall(
                covering.person,
                covering.layer,
                covering.start,
                covering.end,
                covering.override,
                covering.response_minutes,
            )
        span = min(span * 4, _MAX_LOOKAROUND)


# ------------------------------------------------------------------------- iCal


def _ical_text(value: str) -> str:
    return value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


def _fold(line: str) -> str:
    """Fold at 75 octets (RFC 5545 3.1) without splitting a UTF-8 character."""
    parts: list[bytes] = []
    current = b""
    for char in line:
        encoded = char.encode("utf-8")
        if len(current) + len(encoded) > 75:
            parts.append(current)
            current = b" "  # the continuation's leading space counts toward 75
        current += encoded
    parts.append(current)
    return "\r\n".join(p.decode("utf-8") for p in parts)


def _ical_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def feed_url(public_url: str, schedule: str, feed_token: str) -> str:
    """Where a calendar app subscribes to ``schedule``: the ``.ics`` route with a
    calendar feed token in the URL, since such apps send no header."""
    path = f"/api/oncall/{quote(schedule, safe='')}.ics"
    return f"{public_url.rstrip('/')}{path}?{urlencode({'feed': feed_token})}"


def to_ical(
    schedule: Schedule, start: datetime, end: datetime, stamp: datetime | None = None
) -> str:
    """RFC 5545 calendar with one VEVENT per resolved shift in [start, end).

    DTSTAMP is ``stamp`` (default: ``start``) since this code has no clock. The UID
    hashes schedule, layer, person and shift start, so re-exporting keeps it."""
    stamp_text = _ical_time(_require_aware(stamp or start, "stamp"))
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//vigil//sentinel on-call schedules//EN",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        f"X-WR-CALNAME:{_ical_text(schedule.name)}",
    ]
    for shift in shifts(schedule, start, end):
        key = f"{schedule.name}\x00{shift.layer}\x00{shift.person}\x00{_ical_time(shift.start)}"
        uid = hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]
        what = "override" if shift.override else f"layer {shift.layer}"
        description = f"Schedule {schedule.name}, {what}"
        if shift.response_minutes is not None:
            description += f", respond within {shift.response_minutes} min"
        lines += [
            "BEGIN:VEVENT",
            f"UID:{uid}@sentinel-schedules",
            f"DTSTAMP:{stamp_text}",
            f"DTSTART:{_ical_time(shift.start)}",
            f"DTEND:{_ical_time(shift.end)}",
            f"SUMMARY:{_ical_text(f'On call: {shift.person} ({shift.layer})')}",
            f"DESCRIPTION:{_ical_text(description)}",
            "END:VEVENT",
        ]
    lines.append("END:VCALENDAR")
    return "".join(_fold(line) + "\r\n" for line in lines)
