"""Tuned detector parameters and their provenance. A person's ``sentinel tune``
applies its result; a scheduled re-tune only proposes, never applies silently."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from sentinel.db import Database
from sentinel.models import Tuning, TuningStatus

ALL_SERIES = ""


def record(
    db: Database,
    signal: str,
    spec: dict[str, Any],
    provenance: dict[str, Any],
    now: datetime,
    apply: bool,
    by: str,
    series: str = ALL_SERIES,
) -> int:
    with db.session() as s:
        if apply:
            s.execute(
                update(Tuning)
                .where(
                    Tuning.signal == signal,
                    Tuning.series == series,
                    Tuning.status == TuningStatus.applied,
                )
                .values(status=TuningStatus.superseded)
                .execution_options(synchronize_session=False)
            )
        row = Tuning(
            signal=signal,
            series=series,
            status=TuningStatus.applied if apply else TuningStatus.proposed,
            spec=spec,
            provenance=provenance,
            created_at=now,
            decided_at=now if apply else None,
            decided_by=by if apply else None,
        )
        s.add(row)
        s.flush()
        return row.id


def applied(db: Database) -> dict[tuple[str, str], Tuning]:
    """The applied tuning of every (signal, series); series "" covers all series."""
    with db.session() as s:
        rows = s.scalars(select(Tuning).where(Tuning.status == TuningStatus.applied)).all()
    return {(r.signal, r.series): r for r in rows}


def decide(db: Database, tuning_id: int, accept: bool, by: str, now: datetime) -> Tuning:
    """Accept or reject a proposal; accepting supersedes the applied one."""
    with db.session() as s:
        row = s.get(Tuning, tuning_id)
        if row is None or row.status != TuningStatus.proposed:
            raise LookupError(f"no proposed tuning {tuning_id}")
        if accept:
            s.execute(
                update(Tuning)
                .where(
                    Tuning.signal == row.signal,
                    Tuning.series == row.series,
                    Tuning.status == TuningStatus.applied,
                )
                .values(status=TuningStatus.superseded)
                .execution_options(synchronize_session=False)
            )
        row.status = TuningStatus.applied if accept else TuningStatus.rejected
        row.decided_at = now
        row.decided_by = by
        return row
