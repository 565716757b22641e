"""delivery claims: taken-over pages and channel health

Revision ID: s0007
Revises: s0006
Create Date: 2026-12-04 20:50:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import common.db

revision = "s0007"
down_revision = "s0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("taken_over", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_table(
        "channel_health",
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("failing_since", common.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_success_at", common.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_failure_at", common.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("channel", name=op.f("pk_channel_health")),
    )


def downgrade() -> None:
    op.drop_table("channel_health")
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_column("taken_over")
