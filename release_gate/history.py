"""Release history and the change-failure rate (contract 4; postmortems reads
these to link incidents to releases).

The rate counts releases that reached real traffic (a canary was deployed:
promoted, rolled back, inconclusive, aborted, or failed after the canary);
a failure is a release the judge rolled back. Refused calls deployed nothing
and are not releases."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import select

from release_gate.db import Database
from release_gate.models import Release, ReleaseStatus


class ReleaseSummary(BaseModel):
    id: int
    service: str
    version: str
    previous_version: str | None
    author: str
    status: str
    decision: str | None
    started_at: datetime
    finished_at: datetime | None
    rolled_back_at: datetime | None
    override_reason: str | None

    @classmethod
    def of(cls, release: Release) -> ReleaseSummary:
        return cls(
            id=release.id,
            service=release.service,
            version=release.version,
            previous_version=release.previous_version,
            author=release.author,
            status=release.status.value,
            decision=release.decision,
            started_at=release.started_at,
            finished_at=release.finished_at,
            rolled_back_at=release.rolled_back_at,
            override_reason=release.override_reason,
        )


class ChangeFailureRate(BaseModel):
    releases: int
    failed: int
    rate: float | None  # None without releases


def releases_between(
    db: Database,
    start: datetime,
    end: datetime,
    service: str | None = None,
) -> list[ReleaseSummary]:
    """Releases started in [start, end), oldest first."""
    stmt = select(Release).where(Release.started_at >= start, Release.started_at < end)
    if service is not None:
        stmt = stmt.where(Release.service == service)
    with db.sessions() as session:
        rows = session.execute(stmt.order_by(Release.started_at, Release.id)).scalars()
        return [ReleaseSummary.of(r) for r in rows]


def recent_releases(
    db: Database, limit: int = 20, service: str | None = None
) -> list[ReleaseSummary]:
    stmt = select(Release).order_by(Release.id.desc()).limit(limit)
    if service is not None:
        stmt = stmt.where(Release.service == service)
    with db.sessions() as session:
        return [ReleaseSummary.of(r) for r in session.execute(stmt).scalars()]


def change_failure_rate(
    db: Database, start: datetime, end: datetime, service: str | None = None
) -> ChangeFailureRate:
    stmt = select(Release).where(
        Release.started_at >= start,
        Release.started_at < end,
        Release.canary_started_at.is_not(None),
    )
    if service is not None:
        stmt = stmt.where(Release.service == service)
    with db.sessions() as session:
        rows = list(session.execute(stmt).scalars())
    failed = sum(1 for r in rows if r.status == ReleaseStatus.rolled_back)
    return ChangeFailureRate(
        releases=len(rows), failed=failed, rate=failed / len(rows) if rows else None
    )
