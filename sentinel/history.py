"""Stored history of every series: raw samples for recent weeks, hourly
rollups after that. Duplicate timestamps are ignored, so a backfill can
overlap what the live loop already recorded."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite

from common.db import is_sqlite
from common.logs import get_logger
from sentinel.db import Database
from sentinel.models import Resolution, Sample

log = get_logger(__name__)

Labels = tuple[tuple[str, str], ...]


def series_key(labels: Labels | dict[str, str]) -> str:
    """A stable text key for a label set: ``method="wallet",route="/api"`` ("" if none)."""
    items = sorted(labels.items()) if isinstance(labels, dict) else sorted(labels)
    return ",".join(f'{k}="{v}"' for k, v in items)


def parse_series_key(key: str) -> dict[str, str]:
    labels: dict[str, str] = {}
    for part in filter(None, key.split('",')):
        name, _, value = part.partition('="')
        labels[name] = value.rstrip('"')
    return labels


@dataclass(frozen=True, slots=True)
class Row:
    signal: str
    series: str
    t: datetime
    value: float | None
    volume: float | None = None


class HistoryStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._insert = sqlite.insert if is_sqlite(db.engine) else postgresql.insert

    def append(self, rows: Sequence[Row], resolution: Resolution = Resolution.raw) -> None:
        """Store rows in one transaction, one statement compiled once (executemany)."""
        if not rows:
            return
        statement = self._insert(Sample).on_conflict_do_nothing()
        with self.db.session() as s:
            s.execute(
                statement,
                [
                    {
                        "signal": r.signal,
                        "series": r.series,
                        "resolution": resolution,
                        "t": r.t,
                        "value": r.value,
                        "volume": r.volume,
                    }
                    for r in rows
                ],
            )

    def load(
        self,
        signal: str,
        series: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        resolution: Resolution = Resolution.raw,
    ) -> list[Row]:
        query = select(Sample.signal, Sample.series, Sample.t, Sample.value, Sample.volume).where(
            Sample.signal == signal, Sample.resolution == resolution
        )
        if series is not None:
            query = query.where(Sample.series == series)
        if since is not None:
            query = query.where(Sample.t >= since)
        if until is not None:
            query = query.where(Sample.t < until)
        with self.db.session() as s:
            return [Row(*r) for r in s.execute(query.order_by(Sample.series, Sample.t))]

    def series_of(self, signal: str) -> list[str]:
        with self.db.session() as s:
            return list(
                s.scalars(
                    select(Sample.series)
                    .where(Sample.signal == signal)
                    .distinct()
                    .order_by(Sample.series)
                )
            )

    def apply_retention(self, now: datetime, raw_days: int, rollup_days: int) -> dict[str, int]:
        """Fold raw samples older than ``raw_days`` into hourly means, then drop
        them; drop rollups older than ``rollup_days``."""
        cutoff = now - timedelta(days=raw_days)
        with self.db.session() as s:
            old = s.execute(
                select(Sample.signal, Sample.series, Sample.t, Sample.value, Sample.volume).where(
                    Sample.resolution == Resolution.raw, Sample.t < cutoff
                )
            ).all()
        rollups = list(_hourly(Row(*r) for r in old))
        self.append(rollups, Resolution.hour)
        with self.db.session() as s:
            dropped = s.execute(
                delete(Sample).where(Sample.resolution == Resolution.raw, Sample.t < cutoff)
            ).rowcount
            expired = s.execute(
                delete(Sample).where(
                    Sample.resolution == Resolution.hour,
                    Sample.t < now - timedelta(days=rollup_days),
                )
            ).rowcount
        log.info(
            "history.retention",
            rolled_up=len(rollups),
            raw_dropped=dropped,
            rollups_dropped=expired,
        )
        return {"rolled_up": len(rollups), "raw_dropped": dropped, "rollups_dropped": expired}


def _hourly(rows: Iterable[Row]) -> Iterable[Row]:
    buckets: dict[tuple[str, str, datetime], list[Row]] = defaultdict(list)
    for r in rows:
        buckets[(r.signal, r.series, r.t.replace(minute=0, second=0, microsecond=0))].append(r)
    for (signal, series, hour), members in buckets.items():
        values = [m.value for m in members if m.value is not None]
        volumes = [m.volume for m in members if m.volume is not None]
        yield Row(
            signal,
            series,
            hour,
            sum(values) / len(values) if values else None,
            sum(volumes) if volumes else None,
        )
