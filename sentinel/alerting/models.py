"""Tables of the alerting pipeline: notification groups and their escalation,
silences, the audit trail of inbound actions, and the pipeline's cursors."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Enum, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from common.db import UTCDateTime
from sentinel.db import Base


class GroupState(enum.StrEnum):
    open = "open"  # firing, escalating until someone acknowledges
    acknowledged = "acknowledged"  # a person owns it: escalation stopped
    resolved = "resolved"


class AlertGroup(Base):
    """Alerts of one route with the same grouping labels: one notification,
    one escalation, one Slack message, however many alerts it holds."""

    __tablename__ = "alert_groups"
    __table_args__ = (
        # At most one live group per key; resolved ones are history.
        Index(
            "ix_alert_groups_live_key",
            "key",
            unique=True,
            sqlite_where=text("state != 'resolved'"),
            postgresql_where=text("state != 'resolved'"),
        ),
        Index("ix_alert_groups_key_resolved", "key", "resolved_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64))
    route: Mapped[str] = mapped_column(String(64))
    policy: Mapped[str] = mapped_column(String(64))
    labels: Mapped[dict[str, str]] = mapped_column(JSON)  # the grouping labels
    severity: Mapped[str] = mapped_column(String(8))
    state: Mapped[GroupState] = mapped_column(Enum(GroupState, native_enum=False, length=16))
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    acked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    acked_by: Mapped[str | None] = mapped_column(String(128), nullable=True)
    # Escalation position: step index within the policy, and how many times the
    # policy has been run through from the start.
    step: Mapped[int] = mapped_column(default=-1)  # -1: nobody paged yet
    repeat: Mapped[int] = mapped_column(default=0)
    next_escalation_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # When the group's next broadcast (first message, or an update) is due:
    # group_wait after opening, group_interval after the last one.
    notify_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True, index=True)
    last_notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    notified_digest: Mapped[str] = mapped_column(String(64), default="")
    broadcasts: Mapped[int] = mapped_column(default=0)
    reopened: Mapped[int] = mapped_column(default=0)
    # While every alert of the group is muted its escalation clock stands still; this
    # is when it stopped (None: running). Unmuted, the clock resumes where it stood.
    escalation_paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # A person resolved the group while its alerts still fired: they page again, as
    # still firing, after the configured time (AlertingConfig.repage_resolved_minutes).
    hand_resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class Silence(Base):
    """Mutes alerts whose labels match, from ``starts_at`` until ``ends_at``."""

    __tablename__ = "silences"

    id: Mapped[int] = mapped_column(primary_key=True)
    matchers: Mapped[list[str]] = mapped_column(JSON)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    created_by: Mapped[str] = mapped_column(String(128))
    comment: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AuditEvent(Base):
    """Who did what from where: acknowledgements, resolutions, silences, and
    every refused (forged or unauthenticated) inbound request."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    actor: Mapped[str | None] = mapped_column(String(128), nullable=True)
    via: Mapped[str] = mapped_column(String(32))  # api, cli, slack, phone, sms...
    group_id: Mapped[int | None] = mapped_column(nullable=True, index=True)
    alert_id: Mapped[int | None] = mapped_column(nullable=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)


class Cursor(Base):
    """How far a reader of an append-only table has got (survives restarts)."""

    __tablename__ = "alerting_cursors"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    position: Mapped[int] = mapped_column(default=0)


class MessageRef(Base):
    """A provider's id for a message that later notifications edit in place
    (the Slack ``ts`` of a group's or a release's message)."""

    __tablename__ = "message_refs"

    ref: Mapped[str] = mapped_column(String(255), primary_key=True)
    channel: Mapped[str] = mapped_column(String(32))
    provider_id: Mapped[str] = mapped_column(String(128))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class SeenCallback(Base):
    """A signed inbound callback already acted on, kept for as long as its
    signature would otherwise still be accepted, so a captured request replayed
    later (on any replica) is refused."""

    __tablename__ = "seen_callbacks"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    via: Mapped[str] = mapped_column(String(16))
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class ChannelHealth(Base):
    """How a delivery channel has been doing, shared by every dispatcher: when
    it started failing (provider errors, timeouts; a bad number is not the
    channel's fault), which drives the failover route, /api/health and /metrics."""

    __tablename__ = "channel_health"

    channel: Mapped[str] = mapped_column(String(32), primary_key=True)
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    consecutive_failures: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_failure_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class ScheduleOverride(Base):
    """An override added while the sentinel runs (from the console): ``person`` is on
    call on ``schedule`` from ``starts_at`` to ``ends_at``, above the configured layers
    and overrides, like one written in the schedule's file."""

    __tablename__ = "schedule_overrides"

    id: Mapped[int] = mapped_column(primary_key=True)
    schedule: Mapped[str] = mapped_column(String(64), index=True)
    person: Mapped[str] = mapped_column(String(128))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
