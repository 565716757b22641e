"""Release locks (seed 003 §1.4): while a release of a service is in flight
nobody else releases it; for some minutes after it finished only its author
(to roll back or ship a fix) and the senior engineers may. Each service has
one row, read with ``SELECT ... FOR UPDATE`` on PostgreSQL (SQLite serializes
writers with ``BEGIN IMMEDIATE``), so of many concurrent callers exactly one
takes it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from release_gate.db import Database
from release_gate.models import LockState, ServiceLock

Exemption = Literal["author", "senior"]


class LockInfo(BaseModel):
    """A lock as the CLI, the API and the receipt show it."""

    service: str
    state: str
    holder: str | None
    release_id: int | None
    version: str | None
    acquired_at: datetime | None
    until: datetime | None

    @classmethod
    def of(cls, lock: ServiceLock, now: datetime) -> LockInfo:
        info = cls.model_validate(lock, from_attributes=True)
        if lock.state == LockState.cooldown and lock.until is not None and lock.until <= now:
            info.state = LockState.free
        return info


@dataclass(frozen=True)
class LockCheck:
    """Whether ``author`` may release now, and if not, who is in the way."""

    blocked: bool
    overridable: bool
    exemption: Exemption | None
    lock: LockInfo

    def message(self) -> str:
        lock = self.lock
        until = lock.until.strftime("%Y-%m-%d %H:%M:%S UTC") if lock.until else "?"
        if lock.state == LockState.releasing:
            return (
                f"{lock.service} is being released by {lock.holder} "
                f"(release {lock.release_id}, version {lock.version}); locked until it "
                f"finishes, at the latest {until}"
            )
        return (
            f"{lock.service} is locked by {lock.holder} until {until} "
            f"after release {lock.release_id} ({lock.version}); only {lock.holder} "
            "and the senior engineers may release before then"
        )


def ensure_lock_row(db: Database, service: str, now: datetime) -> None:
    """Create the service's lock row once; a concurrent creator simply wins."""
    with db.sessions() as session:
        if session.get(ServiceLock, service) is not None:
            return
        session.add(ServiceLock(service=service, state=LockState.free, updated_at=now))
        try:
            session.commit()
        except IntegrityError:
            session.rollback()


def lock_for_update(session: Session, service: str) -> ServiceLock:
    """The service's lock row, locked until the transaction ends."""
    stmt = select(ServiceLock).where(ServiceLock.service == service).with_for_update()
    return session.execute(stmt).scalar_one()


def check(lock: ServiceLock, author: str, seniors: set[str], now: datetime) -> LockCheck:
    info = LockInfo.of(lock, now)
    if info.state == LockState.free:
        return LockCheck(blocked=False, overridable=True, exemption=None, lock=info)
    if info.state == LockState.releasing:
        # Two canaries of one service at once would judge each other: never.
        return LockCheck(blocked=True, overridable=False, exemption=None, lock=info)
    if author == lock.holder:
        return LockCheck(blocked=False, overridable=True, exemption="author", lock=info)
    if author in seniors:
        return LockCheck(blocked=False, overridable=True, exemption="senior", lock=info)
    return LockCheck(blocked=True, overridable=True, exemption=None, lock=info)


def hold(
    lock: ServiceLock,
    *,
    release_id: int,
    author: str,
    version: str,
    now: datetime,
    expected_until: datetime,
) -> None:
    """Take the lock for a release in flight. ``expected_until`` is when, at the
    latest, the author's cooldown ends if the canary runs to its deadline: what
    a refused caller is told."""
    lock.state = LockState.releasing
    lock.holder = author
    lock.release_id = release_id
    lock.version = version
    lock.acquired_at = now
    lock.until = expected_until
    lock.updated_at = now


def cool_down(
    session: Session, service: str, release_id: int, now: datetime, minutes: float
) -> None:
    """The release is over: its author keeps the service for ``minutes``. Only
    the release that holds the lock may turn it into a cooldown."""
    lock = lock_for_update(session, service)
    if lock.release_id != release_id:
        return
    lock.state = LockState.cooldown if minutes > 0 else LockState.free
    lock.until = now + timedelta(minutes=minutes)
    lock.updated_at = now


def free(session: Session, service: str, release_id: int, now: datetime) -> None:
    """Give the lock back without a cooldown (the release never touched a node)."""
    lock = lock_for_update(session, service)
    if lock.release_id != release_id or lock.state != LockState.releasing:
        return
    lock.state = LockState.free
    lock.until = None
    lock.updated_at = now


def list_locks(session: Session, now: datetime, active_only: bool = False) -> list[LockInfo]:
    rows = session.execute(select(ServiceLock).order_by(ServiceLock.service)).scalars()
    infos = [LockInfo.of(row, now) for row in rows]
    return [i for i in infos if i.state != LockState.free] if active_only else infos
