"""Tables of the sentinel."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from common.db import UTCDateTime
from sentinel.db import Base


class Resolution(enum.StrEnum):
    raw = "raw"
    hour = "1h"  # hourly means kept long after raw samples expire


class Sample(Base):
    """One observed value of one series of one signal (``value`` NULL = no data)."""

    __tablename__ = "samples"
    __table_args__ = (
        Index("ix_samples_lookup", "signal", "series", "resolution", "t", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    signal: Mapped[str] = mapped_column(String(128))
    series: Mapped[str] = mapped_column(String(255))  # canonical labels, "" when unsplit
    resolution: Mapped[Resolution] = mapped_column(
        Enum(Resolution, native_enum=False, length=8), default=Resolution.raw
    )
    t: Mapped[datetime] = mapped_column(UTCDateTime())
    value: Mapped[float | None] = mapped_column(Float, nullable=True)
    volume: Mapped[float | None] = mapped_column(Float, nullable=True)


class AlertState(enum.StrEnum):
    pending = "pending"
    firing = "firing"
    resolved = "resolved"
    no_data = "no_data"
    cancelled = "cancelled"  # pending that recovered before it fired


ACTIVE_STATES = (AlertState.pending, AlertState.firing, AlertState.no_data)


class Alert(Base):
    """One episode of one series being anomalous, from pending to resolved."""

    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_fingerprint_state", "fingerprint", "state"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64), index=True)
    signal: Mapped[str] = mapped_column(String(128), index=True)
    series: Mapped[str] = mapped_column(String(255))
    labels: Mapped[dict[str, str]] = mapped_column(JSON)
    severity: Mapped[str] = mapped_column(String(8))
    source: Mapped[str] = mapped_column(String(32), default="sentinel")
    state: Mapped[AlertState] = mapped_column(Enum(AlertState, native_enum=False, length=16))
    summary: Mapped[str] = mapped_column(Text)
    runbook: Mapped[str | None] = mapped_column(Text, nullable=True)
    value: Mapped[float | None] = mapped_column(Float, nullable=True)
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON)
    # The first anomalous sample: where an incident's passive phase starts.
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    firing_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Re-fires folded into this episode instead of opening a new one (flapping).
    reopened: Mapped[int] = mapped_column(default=0)
    # The notification group this alert was routed to (sentinel.alerting).
    group_id: Mapped[int | None] = mapped_column(
        ForeignKey("alert_groups.id", ondelete="SET NULL"), nullable=True, index=True
    )

    transitions: Mapped[list[AlertTransition]] = relationship(
        order_by="AlertTransition.id", cascade="all, delete-orphan"
    )


class AlertTransition(Base):
    __tablename__ = "alert_transitions"

    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"), index=True)
    from_state: Mapped[str | None] = mapped_column(String(16), nullable=True)
    to_state: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    value: Mapped[float | None] = mapped_column(Float, nullable=True)
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON)


class TuningStatus(enum.StrEnum):
    applied = "applied"
    proposed = "proposed"  # from a scheduled re-tune: waits for a person
    rejected = "rejected"
    superseded = "superseded"


class Tuning(Base):
    """Detector parameters chosen from history, with where they came from."""

    __tablename__ = "tunings"
    __table_args__ = (
        # One proposal waits for a person per series: `tunings.record` supersedes the
        # earlier one, and this keeps any other writer to it.
        Index(
            "uq_tunings_one_proposal",
            "signal",
            "series",
            unique=True,
            sqlite_where=text("status = 'proposed'"),
            postgresql_where=text("status = 'proposed'"),
        ),
        # And one tuning is applied per series: applying supersedes the one before.
        Index(
            "uq_tunings_one_applied",
            "signal",
            "series",
            unique=True,
            sqlite_where=text("status = 'applied'"),
            postgresql_where=text("status = 'applied'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    signal: Mapped[str] = mapped_column(String(128), index=True)
    series: Mapped[str] = mapped_column(String(255))
    status: Mapped[TuningStatus] = mapped_column(Enum(TuningStatus, native_enum=False, length=16))
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    provenance: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(128), nullable=True)


class Lease(Base):
    """Leader election among sentinel replicas: whoever holds an unexpired
    lease evaluates; the others wait and take over when it expires."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    # The database's clock, never a replica's (sentinel.lease).
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # The fencing token: one more on every new term; a leader's writes carry it.
    token: Mapped[int] = mapped_column(BigInteger, default=1)


class PushedSample(Base):
    """A value pushed to ``POST /api/push/{signal}``, stored before the push is
    answered: any replica takes it, the leader reads it, none loses it."""

    __tablename__ = "pushed_samples"
    __table_args__ = (
        Index("ix_pushed_samples_signal", "signal", "series"),  # bounds on label sets
        Index("ix_pushed_samples_t", "t"),  # one read per tick covers every signal
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    signal: Mapped[str] = mapped_column(String(128))
    series: Mapped[str] = mapped_column(String(255))  # canonical labels, as in samples
    labels: Mapped[dict[str, str]] = mapped_column(JSON)
    t: Mapped[datetime] = mapped_column(UTCDateTime())
    value: Mapped[float] = mapped_column(Float)
    volume: Mapped[float | None] = mapped_column(Float, nullable=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class NotificationStatus(enum.StrEnum):
    pending = "pending"  # waiting for its (next) attempt
    sending = "sending"  # claimed by a dispatcher until lease_until
    sent = "sent"
    failed = "failed"  # gave up: retries exhausted or a permanent error
    held = "held"  # over its channel's rate limit: waits to go out in a bundle
    bundled = "bundled"  # went out inside the bundle ``bundled_into``
    cancelled = "cancelled"  # a page whose group was acknowledged or resolved before it went out


class Notification(Base):
    """The transactional outbox: a notification is a row before anything is
    sent, so a crash between deciding and sending loses nothing."""

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # Decided once per (alert, step, person, channel): a re-run adds no duplicate.
    key: Mapped[str] = mapped_column(String(255), unique=True)
    alert_id: Mapped[int | None] = mapped_column(
        ForeignKey("alerts.id", ondelete="SET NULL"), nullable=True, index=True
    )
    channel: Mapped[str] = mapped_column(String(32))
    recipient: Mapped[str] = mapped_column(String(255))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[NotificationStatus] = mapped_column(
        Enum(NotificationStatus, native_enum=False, length=16)
    )
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    claim_token: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # Indexed: provider callbacks (Twilio's status, keypad) find the page by it.
    provider_id: Mapped[str | None] = mapped_column(String(128), nullable=True, index=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # Escalation context: which group, step and person this page belongs to.
    group_id: Mapped[int | None] = mapped_column(
        ForeignKey("alert_groups.id", ondelete="SET NULL"), nullable=True, index=True
    )
    person: Mapped[str | None] = mapped_column(String(128), nullable=True)
    step: Mapped[int | None] = mapped_column(nullable=True)
    bundled_into: Mapped[int | None] = mapped_column(nullable=True)
    # Delivery confirmed by the provider (SMS delivered, call answered by a human).
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # Claimed from a dispatcher that died mid-send: before sending again, ask the
    # provider whether the first try went out (cleared once settled).
    taken_over: Mapped[bool] = mapped_column(default=False)


class DeliveryAttempt(Base):
    """Every try to deliver, and every provider callback about it (``source``)."""

    __tablename__ = "delivery_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    notification_id: Mapped[int] = mapped_column(
        ForeignKey("notifications.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    ok: Mapped[bool]
    status: Mapped[str] = mapped_column(String(32))
    provider_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    source: Mapped[str] = mapped_column(String(16), default="send")  # send | callback
