"""Bounds every API puts on the numbers and instants it accepts, so all services
refuse the same nonsense the same way: a 422 naming the field, never an
overflow deep inside a database driver or a ``timedelta``.

The limits say what the product means, not what the types can hold: an id is a
database row (an INTEGER column), an instant lies between 1970 and 2100 (a year
9999 leaves no room to add a duration), and a duration is bounded by the
longest one that makes sense for its use (``minutes(max_minutes=...)``)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Annotated

from annotated_types import Ge, Gt, Le
from pydantic import AfterValidator, BeforeValidator, WithJsonSchema

# Every table's id is an INTEGER: 32 bits on PostgreSQL (SQLite would take 64).
MAX_DB_ID = 2**31 - 1
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)

MAX_SILENCE = timedelta(weeks=4)  # longer than that is a maintenance window or a config change
MAX_FREEZE = timedelta(days=90)  # a freeze past a quarter is a policy, not a freeze


# The years an instant or a day may be written with: what the schemas declare.
YEARS_PATTERN = r"^(19[7-9][0-9]|20[0-9][0-9])-"


_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def _not_a_number(value: object) -> object:
    """An instant is written as ISO 8601, as the schemas say: a number (which
    pydantic would read as Unix time, in seconds or milliseconds by its size) is
    refused rather than guessed at."""
    if isinstance(value, int | float) or (
        isinstance(value, str) and _NUMBER.fullmatch(value.strip())
    ):
        raise ValueError("give an ISO 8601 time (e.g. 2026-01-05T12:00:00Z), not a number")
    return value


def _sane_instant(value: datetime) -> datetime:
    """Naive instants are read as UTC (what every component stores). The year is
    judged as written (1970-01-01T00:00+05:00 is in), as the schemas say."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    if not EARLIEST.year <= value.year < LATEST.year:
        raise ValueError(
            f"must lie between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d} (got {value.isoformat()})"
        )
    return value


def _aware_sane_instant(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("give a timezone (e.g. 2026-01-05T12:00:00Z)")
    return _sane_instant(value)


def _sane_day(value: date) -> date:
    if not EARLIEST.date() <= value < LATEST.date():
        raise ValueError(
            f"must lie between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d} (got {value.isoformat()})"
        )
    return value


# A row id in a path, query or body: positive and within the id column's range.
DbId = Annotated[int, Ge(1), Le(MAX_DB_ID)]
_INSTANT_SCHEMA = WithJsonSchema(
    {"type": "string", "format": "date-time", "pattern": YEARS_PATTERN}
)
_DAY_SCHEMA = WithJsonSchema({"type": "string", "format": "date", "pattern": YEARS_PATTERN})

# An instant in a request: timezone-aware UTC afterwards, between 1970 and 2100.
Timestamp = Annotated[
    datetime, BeforeValidator(_not_a_number), AfterValidator(_sane_instant), _INSTANT_SCHEMA
]
# The same where a naive instant is refused rather than read as UTC.
AwareTimestamp = Annotated[
    datetime, BeforeValidator(_not_a_number), AfterValidator(_aware_sane_instant), _INSTANT_SCHEMA
]
# A calendar day in a request (a due date), between 1970 and 2100.
Day = Annotated[date, AfterValidator(_sane_day), _DAY_SCHEMA]


def minutes(max_minutes: float) -> type[float]:
    """A positive duration in minutes, at most ``max_minutes``."""
    return Annotated[float, Gt(0), Le(max_minutes)]  # type: ignore[return-value]


def span_error(start: datetime, end: datetime, longest: timedelta) -> str | None:
    """Why ``[start, end)`` is not a usable span (None if it is)."""
    if end <= start:
        return "must be after the start"
    if end - start > longest:
        return f"lasts {end - start}; at most {_human(longest)} is allowed"
    return None


def _human(delta: timedelta) -> str:
    if delta.days and delta.days % 7 == 0:
        return f"{delta.days // 7} weeks"
    if delta.days:
        return f"{delta.days} days"
    return f"{delta.total_seconds() / 60:g} minutes"
