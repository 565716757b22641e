"""Leader election over the sentinel database: one replica evaluates, the
others stand by and take over once the leader stops renewing.

A lease is a row (name, holder, token, expires_at). Everything about time is
the database's clock, never a replica's: a replica whose clock runs ahead can
neither steal a live lease nor keep a dead one. Each acquisition by a new
holder (or after the lease lapsed) starts a new term with a higher ``token``,
the fencing token. Every write a leader makes for its term goes through a
``FencedDatabase``, which checks, inside the same transaction and under a
share lock on the lease row, that the token is still the current one: a
deposed leader that wakes up mid-cycle has its writes refused (``LeaseLost``)
instead of racing the new leader."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from common.db_clock import database_now
from common.logs import get_logger
from sentinel.db import Database
from sentinel.models import Lease

log = get_logger(__name__)


class LeaseLost(RuntimeError):
    """The lease moved on (another holder, a newer term): this term's writes are refused."""


@dataclass(frozen=True)
class Term:
    """One holder's uninterrupted tenure of a lease."""

    name: str
    holder: str
    token: int
    expires_at: datetime


def acquire(db: Database, name: str, holder: str, ttl: timedelta) -> Term | None:
    """Take or renew the lease; the current term while ``holder`` leads, else None.
    A renewal keeps the token; taking over (or coming back after the lease
    lapsed) increments it."""
    try:
        with db.session() as s:
            now = database_now(s)
            row = s.scalars(select(Lease).where(Lease.name == name).with_for_update()).first()
            if row is None:
                row = Lease(name=name, holder=holder, token=1, expires_at=now + ttl)
                s.add(row)
                s.flush()
                log.info("lease.created", lease=name, holder=holder, token=1)
            elif row.holder == holder and row.expires_at > now:
                row.expires_at = now + ttl
            elif row.expires_at <= now:
                previous = row.holder
                row.holder, row.token, row.expires_at = holder, row.token + 1, now + ttl
                log.info(
                    "lease.taken", lease=name, holder=holder, previous=previous, token=row.token
                )
            else:
                return None
            return Term(name, holder, row.token, row.expires_at)
    except IntegrityError:
        return None  # another replica inserted the row first: it holds the lease


def release(db: Database, name: str, holder: str) -> None:
    """Give the lease up at shutdown so a standby takes over at once."""
    with db.session() as s:
        row = s.scalars(select(Lease).where(Lease.name == name).with_for_update()).first()
        if row is not None and row.holder == holder:
            row.expires_at = database_now(s)


def holder_of(db: Database, name: str) -> tuple[str, datetime, int] | None:
    """Who holds ``name`` (possibly expired), until when, and in which term."""
    with db.session() as s:
        lease = s.get(Lease, name)
        return (lease.holder, lease.expires_at, lease.token) if lease else None


def check_term(session: Session, term: Term) -> None:
    """Raise ``LeaseLost`` unless ``term`` is still the lease's current one. The row
    is share-locked (PostgreSQL; SQLite's write lock serializes anyway) until the
    caller's transaction ends, so no takeover can commit between this check and
    the caller's writes."""
    row = session.execute(
        select(Lease.holder, Lease.token).where(Lease.name == term.name).with_for_update(read=True)
    ).first()
    if row is None or row.holder != term.holder or row.token != term.token:
        current = f"{row.holder} (token {row.token})" if row else "nobody"
        raise LeaseLost(
            f"lease {term.name} is held by {current}, not {term.holder} (token {term.token})"
        )


class FencedDatabase(Database):
    """The sentinel database as one leadership term writes to it: every unit of
    work first checks the term (``check_term``) in its own transaction."""

    def __init__(self, db: Database, term: Term) -> None:
        super().__init__(db.url, engine=db.engine)
        self.term = term

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        with super().session() as s:
            check_term(s, self.term)
            yield s

    def dispose(self) -> None:
        """The engine belongs to the replica's own ``Database``."""
