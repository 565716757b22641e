"""alert groups escalation silences audit

Revision ID: s0003
Revises: s0002
Create Date: 2026-12-01 21:04:49.865618
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import common.db

revision = "s0003"
down_revision = "s0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert_groups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("route", sa.String(length=64), nullable=False),
        sa.Column("policy", sa.String(length=64), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("severity", sa.String(length=8), nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "open", "acknowledged", "resolved", name="groupstate", native_enum=False, length=16
            ),
            nullable=False,
        ),
        sa.Column("opened_at", common.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", common.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", common.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("acked_at", common.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("acked_by", sa.String(length=128), nullable=True),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("repeat", sa.Integer(), nullable=False),
        sa.Column("next_escalation_at", common.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("notify_at", common.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_notified_at", common.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("notified_digest", sa.String(length=64), nullable=False),
        sa.Column("broadcasts", sa.Integer(), nullable=False),
        sa.Column("reopened", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_groups")),
    )
    with op.batch_alter_table("alert_groups", schema=None) as batch_op:
        batch_op.create_index("ix_alert_groups_key_resolved", ["key", "resolved_at"], unique=False)
        batch_op.create_index(
            "ix_alert_groups_live_key",
            ["key"],
            unique=True,
            sqlite_where=sa.text("state != 'resolved'"),
            postgresql_where=sa.text("state != 'resolved'"),
        )
        batch_op.create_index(batch_op.f("ix_alert_groups_notify_at"), ["notify_at"], unique=False)

    op.create_table(
        "alerting_cursors",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_alerting_cursors")),
    )
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", common.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=True),
        sa.Column("via", sa.String(length=32), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=True),
        sa.Column("alert_id", sa.Integer(), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_events_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_events_group_id"), ["group_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_events_kind"), ["kind"], unique=False)

    op.create_table(
        "message_refs",
        sa.Column("ref", sa.String(length=255), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("provider_id", sa.String(length=128), nullable=False),
        sa.Column("updated_at", common.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("ref", name=op.f("pk_message_refs")),
    )
    op.create_table(
        "silences",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("matchers", sa.JSON(), nullable=False),
        sa.Column("starts_at", common.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ends_at", common.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("created_at", common.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_silences")),
    )
    with op.batch_alter_table("silences", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_silences_ends_at"), ["ends_at"], unique=False)

    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reopened", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("group_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_alerts_group_id"), ["group_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_alerts_group_id_alert_groups"),
            "alert_groups",
            ["group_id"],
            ["id"],
            ondelete="SET NULL",
        )

    with op.batch_alter_table("delivery_attempts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("source", sa.String(length=16), nullable=False, server_default="send")
        )

    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.add_column(sa.Column("group_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("person", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("step", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("bundled_into", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("confirmed_at", common.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.create_index(batch_op.f("ix_notifications_group_id"), ["group_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_notifications_provider_id"), ["provider_id"], unique=False
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_notifications_group_id_alert_groups"),
            "alert_groups",
            ["group_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_notifications_group_id_alert_groups"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_notifications_provider_id"))
        batch_op.drop_index(batch_op.f("ix_notifications_group_id"))
        batch_op.drop_column("confirmed_at")
        batch_op.drop_column("bundled_into")
        batch_op.drop_column("step")
        batch_op.drop_column("person")
        batch_op.drop_column("group_id")

    with op.batch_alter_table("delivery_attempts", schema=None) as batch_op:
        batch_op.drop_column("source")

    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_alerts_group_id_alert_groups"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_alerts_group_id"))
        batch_op.drop_column("group_id")
        batch_op.drop_column("reopened")

    with op.batch_alter_table("silences", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_silences_ends_at"))

    op.drop_table("silences")
    op.drop_table("message_refs")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_events_kind"))
        batch_op.drop_index(batch_op.f("ix_audit_events_group_id"))
        batch_op.drop_index(batch_op.f("ix_audit_events_at"))

    op.drop_table("audit_events")
    op.drop_table("alerting_cursors")
    with op.batch_alter_table("alert_groups", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alert_groups_notify_at"))
        batch_op.drop_index(
            "ix_alert_groups_live_key",
            sqlite_where=sa.text("state != 'resolved'"),
            postgresql_where=sa.text("state != 'resolved'"),
        )
        batch_op.drop_index("ix_alert_groups_key_resolved")

    op.drop_table("alert_groups")
