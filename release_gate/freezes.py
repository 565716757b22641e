"""Explicit freezes: "no releases of translator until Monday 09:00, the
payment provider migrates", with a reason and an expiry. A freeze without a
service freezes every service."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from common.bounds import MAX_FREEZE
from common.logs import get_logger
from release_gate.models import Freeze

log = get_logger(__name__)


class FreezeInfo(BaseModel):
    id: int
    service: str | None
    reason: str
    created_by: str
    created_at: datetime
    expires_at: datetime
    lifted_at: datetime | None
    lifted_by: str | None

    @classmethod
    def of(cls, freeze: Freeze) -> FreezeInfo:
        return cls.model_validate(freeze, from_attributes=True)

    def describe(self) -> str:
        scope = self.service or "all services"
        until = self.expires_at.strftime("%Y-%m-%d %H:%M UTC")
        return f"freeze {self.id} of {scope} by {self.created_by} until {until}: {self.reason}"


class FreezeError(ValueError):
    pass


def create_freeze(
    session: Session,
    *,
    service: str | None,
    reason: str,
    created_by: str,
    expires_at: datetime,
    now: datetime,
) -> FreezeInfo:
    if not reason.strip():
        raise FreezeError("a freeze needs a reason")
    if not created_by.strip():
        raise FreezeError("a freeze needs the name of who sets it")
    if expires_at <= now:
        raise FreezeError("a freeze must expire in the future")
    if expires_at - now > MAX_FREEZE:
        raise FreezeError(f"a freeze ends within {MAX_FREEZE.days} days of now")
    freeze = Freeze(
        service=service,
        reason=reason.strip(),
        created_by=created_by.strip(),
        created_at=now,
        expires_at=expires_at,
    )
    session.add(freeze)
    session.flush()
    log.info("freeze.created", freeze_id=freeze.id, service=service or "*", until=expires_at)
    return FreezeInfo.of(freeze)


def lift_freeze(session: Session, freeze_id: int, lifted_by: str, now: datetime) -> FreezeInfo:
    freeze = session.get(Freeze, freeze_id)
    if freeze is None:
        raise FreezeError(f"no freeze {freeze_id}")
    if freeze.lifted_at is None and freeze.expires_at > now:
        freeze.lifted_at = now
        freeze.lifted_by = lifted_by
        log.info("freeze.lifted", freeze_id=freeze_id, by=lifted_by)
    return FreezeInfo.of(freeze)


def active_freezes(session: Session, service: str | None, now: datetime) -> list[FreezeInfo]:
    """Freezes in force now; ``service`` None lists those of every service."""
    stmt = select(Freeze).where(Freeze.lifted_at.is_(None), Freeze.expires_at > now)
    if service is not None:
        stmt = stmt.where(or_(Freeze.service.is_(None), Freeze.service == service))
    return [FreezeInfo.of(f) for f in session.execute(stmt.order_by(Freeze.id)).scalars()]


def list_freezes(session: Session, limit: int = 50) -> list[FreezeInfo]:
    stmt = select(Freeze).order_by(Freeze.id.desc()).limit(limit)
    return [FreezeInfo.of(f) for f in session.execute(stmt).scalars()]
