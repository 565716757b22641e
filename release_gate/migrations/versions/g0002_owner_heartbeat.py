"""owner heartbeat on the database's clock

Revision ID: g0002
Revises: g0001
Create Date: 2026-12-04 20:45:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import common.db

revision = "g0002"
down_revision = "g0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("gate_releases", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("owner_heartbeat_at", common.db.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("gate_releases", schema=None) as batch_op:
        batch_op.drop_column("owner_heartbeat_at")
