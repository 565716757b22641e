"""Leader election over the sentinel database: one replica evaluates, the
others stand by and take over once the leader stops renewing.

A lease is a row (name, holder, expires_at). Acquiring is a conditional
UPDATE that only succeeds if the lease expired or is already ours, or the
INSERT of a missing row; both are atomic on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import or_, update
from sqlalchemy.exc import IntegrityError

from common.logs import get_logger
from sentinel.db import Database
from sentinel.models import Lease

log = get_logger(__name__)


def acquire(db: Database, name: str, holder: str, now: datetime, ttl: timedelta) -> bool:
    """Take or renew the lease; True while ``holder`` is the leader."""
    with db.session() as s:
        taken = s.execute(
            update(Lease)
            .where(Lease.name == name, or_(Lease.holder == holder, Lease.expires_at <= now))
            .values(holder=holder, expires_at=now + ttl)
            .execution_options(synchronize_session=False)
        ).rowcount
    if taken:
        return True
    try:
        with db.session() as s:
            s.add(Lease(name=name, holder=holder, expires_at=now + ttl))
        log.info("lease.created", lease=name, holder=holder)
        return True
    except IntegrityError:
        return False  # someone else holds it


def release(db: Database, name: str, holder: str, now: datetime) -> None:
    """Give the lease up at shutdown so a standby takes over at once."""
    with db.session() as s:
        s.execute(
            update(Lease)
            .where(Lease.name == name, Lease.holder == holder)
            .values(expires_at=now)
            .execution_options(synchronize_session=False)
        )


def holder_of(db: Database, name: str) -> tuple[str, datetime] | None:
    with db.session() as s:
        lease = s.get(Lease, name)
        return (lease.holder, lease.expires_at) if lease else None
