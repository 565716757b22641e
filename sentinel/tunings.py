"""Tuned detector parameters and their provenance. A person's ``sentinel tune``
applies its result; a scheduled re-tune only proposes, never applies silently.
A series has at most one proposal waiting for a person and one tuning applied: the
newest of each (older ones are kept, marked superseded; the database's partial
unique indexes hold to it)."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from sqlalchemy import case, select, text, update
from sqlalchemy.orm import Session

from sentinel.db import Database
from sentinel.models import Tuning, TuningStatus

ALL_SERIES = ""


def _lock_series(s: Session, signal: str, series: str) -> None:
    """On PostgreSQL, serialise writers of one series' tunings until commit: a second
    `record` then sees the first's row and supersedes it instead of both inserting
    (and one failing on the unique index). SQLite already has a single writer."""
    if s.get_bind().dialect.name != "postgresql":
        return
    digest = hashlib.blake2b(f"sentinel.tunings:{signal}\0{series}".encode(), digest_size=8)
    key = int.from_bytes(digest.digest(), "big", signed=True)
    s.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def _supersede(s: Session, signal: str, series: str, status: TuningStatus) -> None:
    s.execute(
        update(Tuning)
        .where(Tuning.signal == signal, Tuning.series == series, Tuning.status == status)
        .values(status=TuningStatus.superseded)
        .execution_options(synchronize_session=False)
    )


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
    """Store a tuning of `signal` (one `series`, or all): applied now (the applied
    one it replaces is superseded, and so is a proposal still waiting: accepted
    later, that older analysis would undo this one), or proposed (the proposal it
    replaces, if one still waits, is superseded). Returns its id."""
    with db.session() as s:
        _lock_series(s, signal, series)
        _supersede(s, signal, series, TuningStatus.proposed)
        if apply:
            _supersede(s, signal, series, TuningStatus.applied)
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
        # locked: a `record` superseding it at the same moment waits, or goes first
        row = s.get(Tuning, tuning_id, with_for_update=True)
        if row is None or row.status != TuningStatus.proposed:
            raise LookupError(f"no proposed tuning {tuning_id}")
        if accept:
            _supersede(s, row.signal, row.series, TuningStatus.applied)
        row.status = TuningStatus.applied if accept else TuningStatus.rejected
        row.decided_at = now
        row.decided_by = by
        return row


def of_signal(db: Database, signal: str, limit: int | None = None) -> list[Tuning]:
    """The tunings of `signal` (every one, or the first `limit`): the proposals waiting
    for a person first, then the rest, newest first within each."""
    waiting_first = case((Tuning.status == TuningStatus.proposed, 0), else_=1)
    with db.session() as s:
        query = (
            select(Tuning)
            .where(Tuning.signal == signal)
            .order_by(waiting_first, Tuning.created_at.desc(), Tuning.id.desc())
            .limit(limit)
        )
        return list(s.scalars(query))
