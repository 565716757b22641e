"""lease fencing token, pushed samples in the database

Revision ID: s0005
Revises: s0004_source_alerts_and_mutes
Create Date: 2026-12-04 20:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import common.db

revision = "s0005"
down_revision = "s0004_source_alerts_and_mutes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("leases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("token", sa.BigInteger(), nullable=False, server_default="1"))
    op.create_table(
        "pushed_samples",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("signal", sa.String(length=128), nullable=False),
        sa.Column("series", sa.String(length=255), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("t", common.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("volume", sa.Float(), nullable=True),
        sa.Column("received_at", common.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pushed_samples")),
    )
    with op.batch_alter_table("pushed_samples", schema=None) as batch_op:
        batch_op.create_index("ix_pushed_samples_signal", ["signal", "series"], unique=False)
        batch_op.create_index("ix_pushed_samples_t", ["t"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_pushed_samples_received_at"), ["received_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("pushed_samples", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pushed_samples_received_at"))
        batch_op.drop_index("ix_pushed_samples_t")
        batch_op.drop_index("ix_pushed_samples_signal")
    op.drop_table("pushed_samples")
    with op.batch_alter_table("leases", schema=None) as batch_op:
        batch_op.drop_column("token")
