"""source alerts and mutes: a muted group's paused escalation clock, and when a
group was resolved by hand (its still-firing alerts page again later)

Revision ID: s0004_source_alerts_and_mutes
Revises: s0003
Create Date: 2026-12-04 20:50:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import common.db

revision = "s0004_source_alerts_and_mutes"
down_revision = "s0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("alert_groups") as batch:
        batch.add_column(
            sa.Column("escalation_paused_at", common.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch.add_column(
            sa.Column("hand_resolved_at", common.db.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("alert_groups") as batch:
        batch.drop_column("hand_resolved_at")
        batch.drop_column("escalation_paused_at")
