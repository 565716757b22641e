"""``push`` signals: values deposited over HTTP by whoever measures them (a
batch job, another service), stored in the sentinel database before the push
is answered, so any replica takes them, the leader reads them, and none is
lost when a replica dies.

The store checks every value before keeping it (``PushValidationError``, a
ValueError, with a message naming the field); the source for a signal reads
what arrived in its window: the latest value per label set, or their sum."""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import delete, func, select

from common.clock import Clock
from common.logs import get_logger
from sentinel.db import Database
from sentinel.history import series_key
from sentinel.models import PushedSample
from sentinel.sources.base import Labels, Reading, SeriesPoint, as_utc, labels_of

log = get_logger(__name__)

SIGNAL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:-]{0,127}$")
LABEL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
Aggregate = Literal["latest", "sum"]


class PushValidationError(ValueError):
    """A pushed value was refused; the message says which field and why."""


class PushBufferFull(PushValidationError):
    """A bound was reached (signals or label sets); the value was not kept."""


@dataclass(frozen=True, slots=True)
class PushedValue:
    t: datetime
    value: float
    labels: Labels
    volume: float | None
    seq: int  # arrival order (the row id), to break ties between equal timestamps


class PushStore:
    """Pushed values in the ``pushed_samples`` table. Bounded: at most
    ``max_signals`` signals and ``max_series_per_signal`` label sets per signal
    are accepted (checked when a new one arrives; replicas racing on the last
    slot may pass it by a few); a read considers a signal's newest
    ``max_points_per_signal`` values; ``prune`` deletes values received more than
    ``retention`` ago (the leader's daily retention job)."""

    def __init__(
        self,
        db: Database,
        *,
        max_signals: int = 1000,
        max_points_per_signal: int = 10_000,
        max_series_per_signal: int = 1000,
        max_labels: int = 16,
        max_label_value_length: int = 256,
        retention: timedelta = timedelta(days=1),
        clock: Clock | None = None,
        max_future: timedelta = timedelta(minutes=5),
    ) -> None:
        self.db = db
        self.max_signals = max_signals
        self.max_points_per_signal = max_points_per_signal
        self.max_series_per_signal = max_series_per_signal
        self.max_labels = max_labels
        self.max_label_value_length = max_label_value_length
        self.retention = retention
        self.clock = clock  # when given, values stamped far in its future are refused
        self.max_future = max_future
        self._lock = threading.Lock()
        self._longest = timedelta(0)
        # The last read: (end, since, values by signal), reused while ``end`` stays.
        self._tick: tuple[datetime, datetime, dict[str, list[PushedValue]]] | None = None

    def _now(self) -> datetime:
        return self.clock.now() if self.clock is not None else datetime.now(UTC)

    def push(
        self,
        signal: str,
        value: float,
        labels: Mapping[str, str] | None = None,
        t: datetime | None = None,
        volume: float | None = None,
    ) -> PushedValue:
        """Store one value (committed when this returns), or raise
        ``PushValidationError`` saying what is wrong. Database errors propagate:
        the caller must not report the value as accepted."""
        if not isinstance(signal, str) or not SIGNAL_NAME.match(signal):
            raise PushValidationError(
                f"signal: {signal!r} is not a signal name (letters, digits, '_', '.', ':', '-'; "
                "at most 128 characters, starting with a letter or '_')"
            )
        number = _finite("value", value)
        vol = None if volume is None else _finite("volume", volume)
        if vol is not None and vol < 0:
            raise PushValidationError(f"volume: must be >= 0, got {vol}")
        key = self._labels(labels)
        when = self._time(t)
        series = series_key(dict(key))
        if len(series) > 255:
            raise PushValidationError(
                f"labels: {len(series)} characters as a series key; at most 255"
            )
        with self.db.session() as s:
            self._check_bounds(s, signal, series)
            row = PushedSample(
                signal=signal,
                series=series,
                labels=dict(key),
                t=when,
                value=number,
                volume=vol,
                received_at=self._now(),
            )
            s.add(row)
            s.flush()
            seq = row.id
        with self._lock:
            self._tick = None  # a read at the same instant must see it
        log.debug("push.accepted", signal=signal, value=number, labels=dict(key) or None)
        return PushedValue(when, number, key, vol, seq)

    def _check_bounds(self, s: Any, signal: str, series: str) -> None:
        known = PushedSample.signal == signal
        if s.scalar(select(PushedSample.id).where(known).limit(1)) is None:
            signals = s.scalar(select(func.count(func.distinct(PushedSample.signal))))
            if signals >= self.max_signals:
                raise PushBufferFull(f"signal: the store already holds {self.max_signals} signals")
            return
        if s.scalar(select(PushedSample.id).where(known, PushedSample.series == series).limit(1)):
            return
        label_sets = s.scalar(select(func.count(func.distinct(PushedSample.series))).where(known))
        if label_sets >= self.max_series_per_signal:
            raise PushBufferFull(
                f"labels: signal {signal} already has {self.max_series_per_signal} label sets"
            )

    def register(self, window: timedelta) -> None:
        """A source reads windows this long: a tick's one query covers the longest."""
        with self._lock:
            self._longest = max(self._longest, window)

    def window(self, signal: str, start: datetime, end: datetime) -> list[PushedValue]:
        """Values of ``signal`` with ``start < t <= end``, in arrival order (at most
        the newest ``max_points_per_signal``). The evaluator reads every due push
        signal at the same ``end``: the first read of an ``end`` loads what every
        signal holds in the longest registered window, in one query, and the
        others are answered from it."""
        with self._lock:
            tick = self._tick
            if tick is None or tick[0] != end or start < tick[1]:
                since = min(start, end - self._longest)
                tick = self._tick = (end, since, self._load(since, end))
        values = tick[2].get(signal, [])
        return [v for v in values if start < v.t][-self.max_points_per_signal :]

    def _load(self, since: datetime, end: datetime) -> dict[str, list[PushedValue]]:
        with self.db.session() as s:
            rows = s.execute(
                select(
                    PushedSample.signal,
                    PushedSample.t,
                    PushedSample.value,
                    PushedSample.labels,
                    PushedSample.volume,
                    PushedSample.id,
                )
                .where(PushedSample.t > since, PushedSample.t <= end)
                .order_by(PushedSample.id)
            ).all()
        by_signal: dict[str, list[PushedValue]] = {}
        for signal, t, value, labels, volume, seq in rows:
            by_signal.setdefault(signal, []).append(
                PushedValue(t, value, labels_of(labels), volume, seq)
            )
        return by_signal

    def signals(self) -> list[str]:
        with self.db.session() as s:
            return list(s.scalars(select(PushedSample.signal).distinct().order_by("signal")))

    def clear(self, signal: str | None = None) -> None:
        with self.db.session() as s:
            statement = delete(PushedSample)
            if signal is not None:
                statement = statement.where(PushedSample.signal == signal)
            s.execute(statement)
        with self._lock:
            self._tick = None

    def prune(self, now: datetime | None = None) -> int:
        """Delete values received more than ``retention`` before ``now``."""
        cutoff = (now or self._now()) - self.retention
        with self.db.session() as s:
            result = s.execute(delete(PushedSample).where(PushedSample.received_at < cutoff))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    def _labels(self, labels: Mapping[str, Any] | None) -> Labels:
        if labels is None:
            return ()
        if not isinstance(labels, Mapping):
            raise PushValidationError("labels: must be an object of name -> string value")
        if len(labels) > self.max_labels:
            raise PushValidationError(
                f"labels: {len(labels)} labels; at most {self.max_labels} are allowed"
            )
        for name, text in labels.items():
            if not isinstance(name, str) or not LABEL_NAME.match(name) or name.startswith("__"):
                raise PushValidationError(
                    f"labels: {name!r} is not a label name (letters, digits and '_', at most "
                    "64 characters, not starting with a digit or '__')"
                )
            if not isinstance(text, str):
                raise PushValidationError(
                    f"labels.{name}: must be a string, got {type(text).__name__}"
                )
            if len(text) > self.max_label_value_length:
                raise PushValidationError(
                    f"labels.{name}: {len(text)} characters; at most {self.max_label_value_length}"
                )
        return labels_of(labels)

    def _time(self, t: datetime | None) -> datetime:
        if t is None:
            return self._now()
        if not isinstance(t, datetime):
            raise PushValidationError(f"t: must be a datetime, got {type(t).__name__}")
        if t.tzinfo is None or t.utcoffset() is None:
            raise PushValidationError("t: must be timezone-aware (UTC), got a naive time")
        t = t.astimezone(UTC)
        if self.clock is not None and t > self.clock.now() + self.max_future:
            raise PushValidationError(
                f"t: {t.isoformat()} is more than {self.max_future} in the future"
            )
        return t


def _finite(field: str, value: Any) -> float:
    # bool is an int to Python but never a measurement.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PushValidationError(f"{field}: must be a number, got {type(value).__name__}")
    number = float(value)
    if not math.isfinite(number):
        raise PushValidationError(f"{field}: must be a finite number, got {value}")
    return number


class PushSource:
    def __init__(
        self,
        buffer: PushStore,
        signal: str,
        window: timedelta,
        *,
        aggregate: Aggregate = "latest",
    ) -> None:
        if window <= timedelta(0):
            raise ValueError(f"window must be positive, got {window}")
        self.buffer = buffer
        self.signal = signal
        self.window = window
        self.aggregate = aggregate
        buffer.register(window)

    def read(self, now: datetime) -> Reading:
        """What arrived in ``(now - window, now]``: a value pushed at ``now`` counts."""
        now = as_utc(now)
        values = self.buffer.window(self.signal, now - self.window, now)
        if not values:
            return Reading.empty(
                now, f"nothing pushed to {self.signal} in the last {self.window.total_seconds():g}s"
            )
        groups: dict[Labels, list[PushedValue]] = {}
        for v in values:
            groups.setdefault(v.labels, []).append(v)
        points = []
        for labels, group in sorted(groups.items()):
            if self.aggregate == "latest":
                last = max(group, key=lambda p: (p.t, p.seq))
                points.append(SeriesPoint(labels, last.value, last.volume))
            else:
                volumes = [p.volume for p in group if p.volume is not None]
                points.append(
                    SeriesPoint(
                        labels, sum(p.value for p in group), sum(volumes) if volumes else None
                    )
                )
        return Reading(now, tuple(points))

    def close(self) -> None:
        """The store is shared (SourceContext owns it)."""
