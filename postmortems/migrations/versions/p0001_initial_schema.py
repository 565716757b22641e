"""initial schema

Revision ID: p0001
Revises:
Create Date: 2026-12-01 21:05:02.382191
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import common.db

revision = "p0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pm_audit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=True),
        sa.Column("at", common.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pm_audit")),
    )
    with op.batch_alter_table("pm_audit", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_pm_audit_incident_id"), ["incident_id"], unique=False)

    op.create_table(
        "pm_incidents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column(
            "severity",
            sa.Enum("P0", "P1", "P2", "P3", name="severity", native_enum=False, length=4),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum(
                "open",
                "mitigated",
                "resolved",
                "closed",
                name="incidentstatus",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column(
            "incident_class",
            sa.Enum(
                "bad_release",
                "bad_release_load",
                "failed_manual_intervention",
                "latent_bug",
                "external_cause",
                "broken_functionality",
                "other",
                "unclassified",
                name="incidentclass",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("class_reason", sa.Text(), nullable=True),
        sa.Column("service", sa.String(length=128), nullable=False),
        sa.Column("on_call", sa.String(length=128), nullable=True),
        sa.Column("lead", sa.String(length=128), nullable=True),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("source_ref", sa.String(length=128), nullable=True),
        sa.Column("release_id", sa.String(length=64), nullable=True),
        sa.Column("rolled_back_at", common.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("started_at", common.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("detected_at", common.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("acknowledged_at", common.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("mitigated_at", common.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("resolved_at", common.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("closed_at", common.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", common.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", common.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pm_incidents")),
    )
    with op.batch_alter_table("pm_incidents", schema=None) as batch_op:
        batch_op.create_index("ix_pm_incidents_service_status", ["service", "status"], unique=False)

    op.create_table(
        "pm_reminders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("last_sent_at", common.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pm_reminders")),
        sa.UniqueConstraint("key", name=op.f("uq_pm_reminders_key")),
    )
    with op.batch_alter_table("pm_reminders", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_pm_reminders_incident_id"), ["incident_id"], unique=False
        )

    op.create_table(
        "pm_watcher_cursors",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("firing_since", common.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", common.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_pm_watcher_cursors")),
    )
    op.create_table(
        "pm_action_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "detective",
                "preventive",
                "corrective",
                name="actionkind",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column(
            "category",
            sa.Enum(
                "sibling_scan",
                "runbook",
                "automation",
                name="actioncategory",
                native_enum=False,
                length=16,
            ),
            nullable=True,
        ),
        sa.Column("owner", sa.String(length=128), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "open",
                "in_progress",
                "done",
                "cancelled",
                name="actionstatus",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("signal", sa.String(length=128), nullable=True),
        sa.Column("series", sa.String(length=255), nullable=True),
        sa.Column("replay", sa.JSON(), nullable=True),
        sa.Column("created_at", common.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", common.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("done_at", common.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["pm_incidents.id"],
            name=op.f("fk_pm_action_items_incident_id_pm_incidents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pm_action_items")),
    )
    with op.batch_alter_table("pm_action_items", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_pm_action_items_incident_id"), ["incident_id"], unique=False
        )

    op.create_table(
        "pm_incident_alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("signal", sa.String(length=128), nullable=False),
        sa.Column("severity", sa.String(length=8), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("started_at", common.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("firing_at", common.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("linked_at", common.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["pm_incidents.id"],
            name=op.f("fk_pm_incident_alerts_incident_id_pm_incidents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pm_incident_alerts")),
        sa.UniqueConstraint("alert_id", name=op.f("uq_pm_incident_alerts_alert_id")),
    )
    with op.batch_alter_table("pm_incident_alerts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_pm_incident_alerts_incident_id"), ["incident_id"], unique=False
        )

    op.create_table(
        "pm_lessons",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=True),
        sa.Column(
            "kind",
            sa.Enum("do", "dont", name="lessonkind", native_enum=False, length=8),
            nullable=False,
        ),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("service", sa.String(length=128), nullable=True),
        sa.Column("incident_class", sa.String(length=32), nullable=True),
        sa.Column("created_at", common.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["pm_incidents.id"],
            name=op.f("fk_pm_lessons_incident_id_pm_incidents"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pm_lessons")),
    )
    with op.batch_alter_table("pm_lessons", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_pm_lessons_incident_id"), ["incident_id"], unique=False
        )

    op.create_table(
        "pm_postmortems",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("root_cause", sa.Text(), nullable=True),
        sa.Column("resolution", sa.Text(), nullable=True),
        sa.Column("business_impact", sa.Text(), nullable=True),
        sa.Column("conclusions", sa.Text(), nullable=True),
        sa.Column("release_id", sa.String(length=64), nullable=True),
        sa.Column("rolled_back_at", common.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("dependency", sa.String(length=200), nullable=True),
        sa.Column("lessons", sa.JSON(), nullable=False),
        sa.Column("complete", sa.Boolean(), nullable=False),
        sa.Column("submitted_by", sa.String(length=128), nullable=True),
        sa.Column("submitted_at", common.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", common.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["pm_incidents.id"],
            name=op.f("fk_pm_postmortems_incident_id_pm_incidents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pm_postmortems")),
        sa.UniqueConstraint("incident_id", name=op.f("uq_pm_postmortems_incident_id")),
    )
    op.create_table(
        "pm_timeline_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("at", common.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("ref", sa.String(length=128), nullable=True),
        sa.Column("suspect", sa.Boolean(), nullable=False),
        sa.Column("origin", sa.String(length=16), nullable=False),
        sa.Column("author", sa.String(length=128), nullable=True),
        sa.Column("created_at", common.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["pm_incidents.id"],
            name=op.f("fk_pm_timeline_entries_incident_id_pm_incidents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pm_timeline_entries")),
    )
    with op.batch_alter_table("pm_timeline_entries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_pm_timeline_entries_incident_at", ["incident_id", "at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("pm_timeline_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_pm_timeline_entries_incident_at")

    op.drop_table("pm_timeline_entries")
    op.drop_table("pm_postmortems")
    with op.batch_alter_table("pm_lessons", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pm_lessons_incident_id"))

    op.drop_table("pm_lessons")
    with op.batch_alter_table("pm_incident_alerts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pm_incident_alerts_incident_id"))

    op.drop_table("pm_incident_alerts")
    with op.batch_alter_table("pm_action_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pm_action_items_incident_id"))

    op.drop_table("pm_action_items")
    op.drop_table("pm_watcher_cursors")
    with op.batch_alter_table("pm_reminders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pm_reminders_incident_id"))

    op.drop_table("pm_reminders")
    with op.batch_alter_table("pm_incidents", schema=None) as batch_op:
        batch_op.drop_index("ix_pm_incidents_service_status")

    op.drop_table("pm_incidents")
    with op.batch_alter_table("pm_audit", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pm_audit_incident_id"))

    op.drop_table("pm_audit")
