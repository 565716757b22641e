"""Tables of the postmortems: incidents and everything an incident leaves behind."""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, Enum, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from common.db import UTCDateTime
from postmortems.db import Base


class Severity(enum.StrEnum):
    P0 = "P0"
    P1 = "P1"
    P2 = "P2"
    P3 = "P3"


class IncidentStatus(enum.StrEnum):
    open = "open"
    mitigated = "mitigated"
    resolved = "resolved"
    closed = "closed"


OPEN_STATUSES = (IncidentStatus.open, IncidentStatus.mitigated)
# Sources whose incidents the platform opened (and titled); any other source is a person.
AUTOMATIC_SOURCES = ("watcher", "release_gate")


class IncidentClass(enum.StrEnum):
    """The six classes of seed 003, and ``other`` (which needs a reason)."""

    bad_release = "bad_release"  # a release answering 500s
    bad_release_load = "bad_release_load"  # suboptimal code of a release loading the database
    failed_manual_intervention = "failed_manual_intervention"
    latent_bug = "latent_bug"  # "easter egg": an old bug triggered by new conditions
    external_cause = "external_cause"  # a dependency or provider failed
    broken_functionality = "broken_functionality"  # a release broke a function, no 500s
    other = "other"
    # Opened automatically, not yet classified by a person; refused at close.
    unclassified = "unclassified"


CLASS_TITLES = {
    IncidentClass.bad_release: "Bad release, 500 errors",
    IncidentClass.bad_release_load: "Bad release, suboptimal code, database load",
    IncidentClass.failed_manual_intervention: "Failed manual intervention",
    IncidentClass.latent_bug: "Easter egg (latent bug)",
    IncidentClass.external_cause: "External cause",
    IncidentClass.broken_functionality: "Bad release, broken functionality",
    IncidentClass.other: "Other",
    IncidentClass.unclassified: "Not classified yet",
}


class Incident(Base):
    __tablename__ = "pm_incidents"
    __table_args__ = (Index("ix_pm_incidents_service_status", "service", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    # Who wrote the title when a person did (None: the platform made it, and may
    # re-make it from what the incident holds when its severity rises).
    title_author: Mapped[str | None] = mapped_column(String(128), nullable=True)
    severity: Mapped[Severity] = mapped_column(Enum(Severity, native_enum=False, length=4))
    status: Mapped[IncidentStatus] = mapped_column(
        Enum(IncidentStatus, native_enum=False, length=16)
    )
    incident_class: Mapped[IncidentClass] = mapped_column(
        Enum(IncidentClass, native_enum=False, length=32)
    )
    class_reason: Mapped[str | None] = mapped_column(Text, nullable=True)  # for "other"
    service: Mapped[str] = mapped_column(String(128))
    on_call: Mapped[str | None] = mapped_column(String(128), nullable=True)
    lead: Mapped[str | None] = mapped_column(String(128), nullable=True)
    # Where it came from: manual, web, cli, api, watcher, release_gate...
    source: Mapped[str] = mapped_column(String(32))
    source_ref: Mapped[str | None] = mapped_column(String(128), nullable=True)
    release_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    rolled_back_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # The passive phase starts at the first anomalous sample, not at the declaration.
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    detected_at: Mapped[datetime] = mapped_column(UTCDateTime())
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    acknowledged_by: Mapped[str | None] = mapped_column(String(128), nullable=True)
    mitigated_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    postmortem: Mapped[Postmortem | None] = relationship(
        back_populates="incident", cascade="all, delete-orphan", uselist=False
    )
    actions: Mapped[list[ActionItem]] = relationship(
        order_by="ActionItem.id", cascade="all, delete-orphan"
    )
    timeline: Mapped[list[TimelineEntry]] = relationship(
        order_by="(TimelineEntry.at, TimelineEntry.id)", cascade="all, delete-orphan"
    )
    alerts: Mapped[list[IncidentAlert]] = relationship(
        order_by="IncidentAlert.id", cascade="all, delete-orphan"
    )


class IncidentAlert(Base):
    """A sentinel alert linked to an incident; an alert belongs to one incident."""

    __tablename__ = "pm_incident_alerts"

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(
        ForeignKey("pm_incidents.id", ondelete="CASCADE"), index=True
    )
    alert_id: Mapped[int] = mapped_column(unique=True)
    signal: Mapped[str] = mapped_column(String(128))
    # Linked before these were kept: None.
    series: Mapped[str | None] = mapped_column(String(255), nullable=True)
    labels: Mapped[dict[str, str] | None] = mapped_column(JSON, nullable=True)
    # The sentinel's alert group (the page): acknowledging it acknowledges the incident.
    group_id: Mapped[int | None] = mapped_column(nullable=True)
    severity: Mapped[str] = mapped_column(String(8))
    summary: Mapped[str] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    firing_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    linked_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Postmortem(Base):
    """The mandatory report (seed 003 §6.2). Saved as a draft any time; complete
    only when every field passes ``forms.validate``."""

    __tablename__ = "pm_postmortems"

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(
        ForeignKey("pm_incidents.id", ondelete="CASCADE"), unique=True
    )
    root_cause: Mapped[str | None] = mapped_column(Text, nullable=True)
    resolution: Mapped[str | None] = mapped_column(Text, nullable=True)  # how it was eliminated
    business_impact: Mapped[str | None] = mapped_column(Text, nullable=True)
    conclusions: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Class-specific answers.
    release_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    rolled_back_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    dependency: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # Do's and don'ts proposed by this postmortem: [{"kind": "do"|"dont", "text": ...}].
    lessons: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    complete: Mapped[bool] = mapped_column(default=False)
    submitted_by: Mapped[str | None] = mapped_column(String(128), nullable=True)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    incident: Mapped[Incident] = relationship(back_populates="postmortem")


class ActionKind(enum.StrEnum):
    detective = "detective"  # a monitor that would catch it next time
    preventive = "preventive"
    corrective = "corrective"


class ActionCategory(enum.StrEnum):
    """What an action is for, where a class of incident demands one."""

    sibling_scan = "sibling_scan"  # latent bug: look for the same egg elsewhere
    runbook = "runbook"  # failed manual intervention
    automation = "automation"  # failed manual intervention


class ActionStatus(enum.StrEnum):
    open = "open"
    in_progress = "in_progress"
    done = "done"
    cancelled = "cancelled"


DONE_ACTION_STATUSES = (ActionStatus.done, ActionStatus.cancelled)


class ActionItem(Base):
    __tablename__ = "pm_action_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(
        ForeignKey("pm_incidents.id", ondelete="CASCADE"), index=True
    )
    title: Mapped[str] = mapped_column(Text)
    kind: Mapped[ActionKind] = mapped_column(Enum(ActionKind, native_enum=False, length=16))
    category: Mapped[ActionCategory | None] = mapped_column(
        Enum(ActionCategory, native_enum=False, length=16), nullable=True
    )
    owner: Mapped[str] = mapped_column(String(128))
    due_date: Mapped[date] = mapped_column(Date)
    status: Mapped[ActionStatus] = mapped_column(Enum(ActionStatus, native_enum=False, length=16))
    # Detective actions name the sentinel signal (and series) that now watches for it.
    signal: Mapped[str | None] = mapped_column(String(128), nullable=True)
    series: Mapped[str | None] = mapped_column(String(255), nullable=True)
    # The replay of that signal's detector over the incident window.
    replay: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class TimelineEntry(Base):
    __tablename__ = "pm_timeline_entries"
    __table_args__ = (Index("ix_pm_timeline_entries_incident_at", "incident_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("pm_incidents.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    # alert, notification, ack, release, rollback, status, note...
    kind: Mapped[str] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(Text)
    ref: Mapped[str | None] = mapped_column(String(128), nullable=True)
    suspect: Mapped[bool] = mapped_column(default=False)
    # "draft" (from what the platform recorded), "manual" or "system" (our own events).
    origin: Mapped[str] = mapped_column(String(16))
    author: Mapped[str | None] = mapped_column(String(128), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class LessonKind(enum.StrEnum):
    do = "do"
    dont = "dont"


class Lesson(Base):
    """One entry of the do's and don'ts registry, from a closed incident."""

    __tablename__ = "pm_lessons"

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int | None] = mapped_column(
        ForeignKey("pm_incidents.id", ondelete="SET NULL"), nullable=True, index=True
    )
    kind: Mapped[LessonKind] = mapped_column(Enum(LessonKind, native_enum=False, length=8))
    text: Mapped[str] = mapped_column(Text)
    service: Mapped[str | None] = mapped_column(String(128), nullable=True)
    incident_class: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AuditEntry(Base):
    """Who changed what, when: every write to an incident."""

    __tablename__ = "pm_audit"

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int | None] = mapped_column(index=True, nullable=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)


class Reminder(Base):
    """When a reminder was last sent, so it repeats at its interval until done."""

    __tablename__ = "pm_reminders"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(128), unique=True)  # postmortem:7, action:12
    incident_id: Mapped[int] = mapped_column(index=True)
    last_sent_at: Mapped[datetime] = mapped_column(UTCDateTime())
    count: Mapped[int] = mapped_column(default=0)


class WatcherCursor(Base):
    """How far the alert watcher has read the sentinel's alerts (survives restarts)."""

    __tablename__ = "pm_watcher_cursors"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    firing_since: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
