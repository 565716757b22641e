"""Tables of the release gate."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Enum, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from common.db import UTCDateTime
from release_gate.db import Base


class ReleaseStatus(enum.StrEnum):
    started = "started"  # lock taken, nothing deployed yet
    canary = "canary"  # the canary node runs the new version
    promoting = "promoting"  # the judge said promote; production is being moved
    promoted = "promoted"
    rolled_back = "rolled_back"  # the judge found the canary worse
    inconclusive = "inconclusive"  # not enough evidence; canary put back
    aborted = "aborted"  # the gate died mid-release; recovery put the canary back
    failed = "failed"  # the infrastructure failed (exit 4)
    refused = "refused"  # a lock, a freeze or a guard said no; nothing deployed


IN_FLIGHT = (ReleaseStatus.started, ReleaseStatus.canary, ReleaseStatus.promoting)


class Release(Base):
    """One call of ``release-gate deploy``, refused or not, with all it did."""

    __tablename__ = "gate_releases"

    id: Mapped[int] = mapped_column(primary_key=True)
    service: Mapped[str] = mapped_column(String(64), index=True)
    version: Mapped[str] = mapped_column(String(128))
    previous_version: Mapped[str | None] = mapped_column(String(128), nullable=True)
    author: Mapped[str] = mapped_column(String(128))
    status: Mapped[ReleaseStatus] = mapped_column(
        Enum(ReleaseStatus, native_enum=False, length=16), index=True
    )
    decision: Mapped[str | None] = mapped_column(String(16), nullable=True)
    exit_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    override_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Why it was refused: lock holder and until when, freezes, incidents, alerts.
    refusal: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # How it got in: the lock it found (and which exemption let it pass), the
    # freezes in force, what the incident/alert guards found or that they were skipped.
    admission: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    canary_node: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    verdict: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # The last counts read from the canary and the control, for the receipt.
    samples: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    announcements: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    incident: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    # host:pid of the gate process running it (who to blame; liveness is the heartbeat).
    owner: Mapped[str | None] = mapped_column(String(128), nullable=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    canary_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    rolled_back_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # The owner's liveness, stamped with the database's clock by its heartbeat
    # thread while the release is in flight (release_gate.heartbeat).
    owner_heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    steps: Mapped[list[ReleaseStep]] = relationship(
        order_by="ReleaseStep.id", cascade="all, delete-orphan", lazy="selectin"
    )


class ReleaseStep(Base):
    """A step of a release as it happened (locked, canary deployed, sampled,
    decided, promoted...), written when it happens so a killed gate loses nothing."""

    __tablename__ = "gate_release_steps"

    id: Mapped[int] = mapped_column(primary_key=True)
    release_id: Mapped[int] = mapped_column(
        ForeignKey("gate_releases.id", ondelete="CASCADE"), index=True
    )
    step: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class LockState(enum.StrEnum):
    free = "free"
    releasing = "releasing"  # a release is in flight: nobody else, no exemption
    cooldown = "cooldown"  # after a release: only its author and the seniors


class ServiceLock(Base):
    """One row per service, taken with SELECT ... FOR UPDATE (PostgreSQL) or
    under SQLite's write lock, so concurrent callers are serialized."""

    __tablename__ = "gate_locks"

    service: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[LockState] = mapped_column(Enum(LockState, native_enum=False, length=16))
    holder: Mapped[str | None] = mapped_column(String(128), nullable=True)
    release_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    version: Mapped[str | None] = mapped_column(String(128), nullable=True)
    acquired_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Freeze(Base):
    """An explicit freeze: no release of ``service`` (NULL: of any service)
    until ``expires_at`` or until lifted."""

    __tablename__ = "gate_freezes"

    id: Mapped[int] = mapped_column(primary_key=True)
    service: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    reason: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    lifted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    lifted_by: Mapped[str | None] = mapped_column(String(128), nullable=True)


class Override(Base):
    """The audit of an override: who pushed past what, and why."""

    __tablename__ = "gate_overrides"

    id: Mapped[int] = mapped_column(primary_key=True)
    release_id: Mapped[int] = mapped_column(
        ForeignKey("gate_releases.id", ondelete="CASCADE"), index=True
    )
    service: Mapped[str] = mapped_column(String(64))
    author: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    # [{"kind": "lock"|"freeze"|"incident"|"alert"|"guard_unreachable", ...}]
    overridden: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
