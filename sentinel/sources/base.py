"""What every source returns, and the one interface the sentinel calls.

A reading either carries points or says why it has none: a source that fails
or finds nothing answers ``Reading(t, (), no_data="why")`` instead of raising
or inventing a zero, so "no data" stays distinguishable from "zero"."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

Labels = tuple[tuple[str, str], ...]

# A guard against a typo (step=1s over a year) freezing the caller.
MAX_BACKFILL_STEPS = 100_000


def labels_of(mapping: Mapping[str, object]) -> Labels:
    """Sorted ``(name, value)`` pairs, values as strings (None becomes "")."""
    return tuple(sorted((str(k), "" if v is None else str(v)) for k, v in mapping.items()))


def _check_utc(t: datetime, what: str) -> None:
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware (UTC), got naive {t.isoformat()}")


def as_utc(t: datetime, what: str = "now") -> datetime:
    """``t`` in UTC; a naive time is a caller's bug (local or UTC?), so it raises."""
    _check_utc(t, what)
    return t.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class SeriesPoint:
    labels: Labels  # sorted (name, value) pairs naming a sub-series, () if unsplit
    value: float
    volume: float | None = None  # the denominator/attempts behind a ratio or count, when known

    def __post_init__(self) -> None:
        # Detectors do arithmetic on these; NaN or inf would poison their state silently.
        if not math.isfinite(self.value):
            raise ValueError(f"point value must be finite, got {self.value!r}")
        if self.volume is not None and not math.isfinite(self.volume):
            raise ValueError(f"point volume must be finite, got {self.volume!r}")
        if list(self.labels) != sorted(self.labels):
            raise ValueError(f"labels must be sorted by name: {self.labels!r}")


@dataclass(frozen=True, slots=True)
class SourceFault:
    """A source the reading depends on could not be read at all (a database that
    cannot be opened, a scrape target or Prometheus that does not answer), as
    opposed to a query that ran and found nothing. ``source`` names it the same
    way for every signal that reads it ("database translator"), so the sentinel
    raises one alert for the source instead of one no-data page per signal."""

    source: str
    reason: str  # one line, never a password


@dataclass(frozen=True, slots=True)
class Reading:
    t: datetime  # UTC-aware time the reading describes (end of window)
    points: tuple[SeriesPoint, ...]
    no_data: str | None = None  # why there is no data (source error, empty result)
    # Sources that failed; with points when only some failed (one of two scrape targets).
    faults: tuple[SourceFault, ...] = ()

    def __post_init__(self) -> None:
        _check_utc(self.t, "Reading.t")
        if self.no_data is not None and self.points:
            raise ValueError("a no-data reading carries no points")
        if self.no_data is None and not self.points:
            raise ValueError("a reading without points must say why (no_data)")

    @classmethod
    def empty(cls, t: datetime, reason: str, faults: tuple[SourceFault, ...] = ()) -> Reading:
        return cls(t=t, points=(), no_data=reason, faults=faults)

    @property
    def ok(self) -> bool:
        return self.no_data is None


class Source(Protocol):
    def read(self, now: datetime) -> Reading: ...  # never raises for source failures

    def close(self) -> None: ...


def depends_on(source: object) -> tuple[str, ...]:
    """The names of the sources a source reads (``SourceFault.source``); sources
    that cannot fail on their own (pushed values) have none."""
    return tuple(getattr(source, "depends_on", ()))


@runtime_checkable
class RangeSource(Protocol):
    """A source that can answer for past times (SQL over business tables,
    PromQL over Prometheus' storage)."""

    def read(self, now: datetime) -> Reading: ...

    def read_range(self, start: datetime, end: datetime, step: timedelta) -> list[Reading]: ...

    def close(self) -> None: ...


class BackfillUnsupported(TypeError):
    """The source only sees the present (a scrape, pushed values)."""


def backfill_times(start: datetime, end: datetime, step: timedelta) -> Iterator[datetime]:
    """``start, start + step, ...`` up to and including ``end`` (like query_range)."""
    _check_utc(start, "start")
    _check_utc(end, "end")
    if step <= timedelta(0):
        raise ValueError(f"step must be positive, got {step}")
    if end < start:
        raise ValueError(f"end {end.isoformat()} is before start {start.isoformat()}")
    count = int((end - start) / step) + 1
    if count > MAX_BACKFILL_STEPS:
        raise ValueError(
            f"{count} steps between {start.isoformat()} and {end.isoformat()}; "
            f"at most {MAX_BACKFILL_STEPS}: use a larger step"
        )
    for i in range(count):
        yield start + i * step


def backfill(source: Source, start: datetime, end: datetime, step: timedelta) -> list[Reading]:
    """Readings at ``start, start + step, ... <= end``, each over the source's
    own window ending then: how a new signal is tuned on the day it is added."""
    times = list(backfill_times(start, end, step))  # validates before any query runs
    if not isinstance(source, RangeSource):
        raise BackfillUnsupported(
            f"{type(source).__name__} only sees the present and keeps no history; "
            "backfill needs an sql or promql source"
        )
    if not times:
        return []
    return source.read_range(start, end, step)
