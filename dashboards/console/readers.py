"""What the console shows, read from the sentinel's records: its catalogue, the samples
it stored, its alerts, their pages and every delivery attempt. Read-only; the sentinel
stays the one that writes them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Integer, cast, func, select

from common.clock import ensure_utc
from common.db import is_sqlite
from sentinel import tunings
from sentinel.alerting.config import AlertingConfig, schedule
from sentinel.alerting.models import AlertGroup, ScheduleOverride, Silence
from sentinel.alerting.overrides import effective_schedule, stored_overrides
from sentinel.alerting.schedules import Schedule, Shift, gaps, shifts, who_is_on_call
from sentinel.alerting.silences import MaintenanceWindow
from sentinel.catalogue.models import Catalogue, SignalSpec
from sentinel.db import Database
from sentinel.history import parse_series_key
from sentinel.models import (
    ACTIVE_STATES,
    Alert,
    AlertState,
    DeliveryAttempt,
    Notification,
    Sample,
    Tuning,
)

SPARK_HOURS = 6  # the sparkline of the home page covers this much history
SPARK_POINTS = 120  # ... as the means of this many slots


@dataclass
class SeriesView:
    series: str
    labels: dict[str, str]
    last_t: datetime | None
    last_value: float | None
    alert: Alert | None  # its active alert, if any
    spark: list[tuple[float, float | None]] = field(default_factory=list)  # (epoch s, value)

    @property
    def state(self) -> str:
        return str(self.alert.state) if self.alert is not None else "ok"


@dataclass
class SignalView:
    spec: SignalSpec
    series: list[SeriesView]

    @property
    def state(self) -> str:
        """The worst state of its series: firing, then pending and no data, then ok."""
        states = {s.state for s in self.series}
        for state in (AlertState.firing, AlertState.pending, AlertState.no_data):
            if str(state) in states:
                return str(state)
        return "ok" if self.series else "no samples yet"


@dataclass
class OnCallNow:
    schedule: str
    person: str | None
    until: datetime | None
    next_person: str | None


@dataclass
class Rota:
    """One schedule's coming days: its shifts (overrides marked) and its gaps."""

    schedule: str
    time_zone: str
    shifts: list[Shift]
    gaps: list[tuple[datetime, datetime]]


@dataclass
class Delivery:
    notification: Notification
    attempts: list[DeliveryAttempt]


class SentinelReader:
    def __init__(
        self, db: Database, catalogue: Catalogue, alerting: AlertingConfig | None = None
    ) -> None:
        self.db = db
        self.catalogue = catalogue
        self.alerting = alerting

    # --- signals --------------------------------------------------------------------

    def signals(self, now: datetime) -> list[SignalView]:
        """Every signal of the catalogue with its series, firing ones first."""
        latest = self._latest()
        active = self._active_alerts()
        sparks = self.averages(now - timedelta(hours=SPARK_HOURS), now, SPARK_POINTS)
        views = []
        for spec in self.catalogue.signals:
            keys = sorted({k for (sig, k) in latest if sig == spec.name})
            keys += sorted({k for (sig, k) in active if sig == spec.name and k not in keys})
            views.append(
                SignalView(
                    spec,
                    [
                        SeriesView(
                            k,
                            parse_series_key(k),
                            *latest.get((spec.name, k), (None, None)),
                            active.get((spec.name, k)),
                            sparks.get((spec.name, k), []),
                        )
                        for k in keys
                    ],
                )
            )
        rank = {"firing": 0, "pending": 1, "no_data": 1}
        return sorted(views, key=lambda v: rank.get(v.state, 2))

    def signal(self, name: str) -> SignalSpec:
        return self.catalogue.get(name)

    def alerts_of(self, name: str, since: datetime) -> list[Alert]:
        """The signal's alerts that fired or were active since `since`, newest first."""
        with self.db.session() as s:
            query = (
                select(Alert)
                .where(Alert.signal == name)
                .where((Alert.resolved_at.is_(None)) | (Alert.resolved_at >= since))
                .order_by(Alert.started_at.desc())
                .limit(200)
            )
            return list(s.scalars(query))

    def tunings_of(self, name: str, limit: int = 10) -> list[Tuning]:
        """The signal's tunings: what waits for a person first, then what is applied
        and what came before, newest first."""
        return tunings.of_signal(self.db, name, limit)

    # --- alerts and pages -----------------------------------------------------------

    def active_alerts(self) -> list[Alert]:
        with self.db.session() as s:
            query = (
                select(Alert)
                .where(Alert.state.in_(ACTIVE_STATES))
                .order_by(Alert.severity, Alert.started_at.desc())
            )
            return list(s.scalars(query))

    def recent_alerts(self, limit: int = 50) -> list[Alert]:
        with self.db.session() as s:
            return list(s.scalars(select(Alert).order_by(Alert.updated_at.desc()).limit(limit)))

    def alert(self, alert_id: int) -> Alert | None:
        with self.db.session() as s:
            return s.get(Alert, alert_id)

    def group(self, group_id: int) -> AlertGroup | None:
        with self.db.session() as s:
            return s.get(AlertGroup, group_id)

    def deliveries(self, group_id: int) -> list[Delivery]:
        """Every page of a group, oldest first, with each attempt and provider receipt."""
        with self.db.session() as s:
            pages = list(
                s.scalars(
                    select(Notification)
                    .where(Notification.group_id == group_id)
                    .order_by(Notification.created_at, Notification.id)
                )
            )
            attempts: dict[int, list[DeliveryAttempt]] = {}
            if pages:
                for a in s.scalars(
                    select(DeliveryAttempt)
                    .where(DeliveryAttempt.notification_id.in_([p.id for p in pages]))
                    .order_by(DeliveryAttempt.at, DeliveryAttempt.id)
                ):
                    attempts.setdefault(a.notification_id, []).append(a)
        return [Delivery(p, attempts.get(p.id, [])) for p in pages]

    # --- on call --------------------------------------------------------------------

    def schedule(self, name: str) -> Schedule:
        """The schedule as configured (its layers and the file's overrides)."""
        assert self.alerting is not None
        return schedule(self.alerting, name)

    def _schedules(self, at: datetime) -> dict[str, Schedule]:
        """Every schedule with the overrides added while running on top: what pages."""
        if self.alerting is None:
            return {}
        with self.db.session() as s:
            return {n: effective_schedule(self.alerting, s, n, at) for n in self.alerting.schedules}

    def on_call(self, now: datetime) -> list[OnCallNow]:
        out = []
        for name, sched in self._schedules(now).items():
            now_shift = who_is_on_call(sched, now)
            after = now_shift.end if now_shift is not None else None
            next_shift = who_is_on_call(sched, after) if after is not None else None
            out.append(
                OnCallNow(
                    name,
                    now_shift.person if now_shift else None,
                    after,
                    next_shift.person if next_shift else None,
                )
            )
        return out

    def rotas(self, start: datetime, days: int) -> list[Rota]:
        end = start + timedelta(days=days)
        return [
            Rota(name, sched.time_zone, shifts(sched, start, end), gaps(sched, start, end))
            for name, sched in self._schedules(start).items()
        ]

    def stored_overrides(self, now: datetime) -> list[ScheduleOverride]:
        """The overrides added while running that have not ended, soonest first."""
        with self.db.session() as s:
            rows = stored_overrides(s, ending_after=now)
        return sorted(rows, key=lambda r: (r.starts_at, r.id))

    def silences(self, now: datetime) -> list[Silence]:
        """Silences in force now or starting later, soonest ending first."""
        with self.db.session() as s:
            query = select(Silence).where(Silence.ends_at > now).order_by(Silence.ends_at)
            return list(s.scalars(query))

    def maintenance_windows(self) -> list[MaintenanceWindow]:
        return list(self.alerting.maintenance_windows) if self.alerting is not None else []

    # --- queries --------------------------------------------------------------------

    def _latest(self) -> dict[tuple[str, str], tuple[datetime, float | None]]:
        last = (
            select(Sample.signal, Sample.series, func.max(Sample.t).label("t"))
            .where(Sample.resolution == "raw")
            .group_by(Sample.signal, Sample.series)
            .subquery()
        )
        query = select(Sample.signal, Sample.series, Sample.t, Sample.value).join(
            last,
            (Sample.signal == last.c.signal)
            & (Sample.series == last.c.series)
            & (Sample.t == last.c.t),
        )
        with self.db.session() as s:
            return {(sig, k): (ensure_utc(t), v) for sig, k, t, v in s.execute(query)}

    def _active_alerts(self) -> dict[tuple[str, str], Alert]:
        return {(a.signal, a.series): a for a in self.active_alerts()}

    def averages(
        self, since: datetime, until: datetime, slots: int, signal: str | None = None
    ) -> dict[tuple[str, str], list[tuple[float, float]]]:
        """Every series (of one signal, or all) over [since, until) as the mean of each of
        `slots` equal slots, averaged by the database (a second-by-second series holds
        21,600 samples in six hours); a short spike still moves its slot's mean. Points
        are (epoch seconds of the slot's middle, mean); slots without data are left out."""
        slot_seconds = (until - since).total_seconds() / slots
        if is_sqlite(self.db.engine):
            age = (func.julianday(Sample.t) - func.julianday(since.replace(tzinfo=None))) * 86400.0
        else:
            age = func.extract("epoch", Sample.t - since)
        slot = cast(func.floor(age / slot_seconds), Integer).label("slot")
        query = (
            select(Sample.signal, Sample.series, slot, func.avg(Sample.value))
            .where(Sample.resolution == "raw", Sample.value.is_not(None))
            .where(Sample.t >= since, Sample.t < until)
            .group_by(Sample.signal, Sample.series, slot)
            .order_by(Sample.signal, Sample.series, slot)
        )
        if signal is not None:
            query = query.where(Sample.signal == signal)
        start = since.timestamp()
        out: dict[tuple[str, str], list[tuple[float, float]]] = {}
        with self.db.session() as s:
            for sig, k, i, mean in s.execute(query):
                out.setdefault((sig, k), []).append((start + (i + 0.5) * slot_seconds, mean))
        return out
