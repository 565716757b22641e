"""worker heartbeats on claimed jobs

Revision ID: 0004_job_heartbeats
Revises: 0003_file_chunks
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import common.db

revision = "0004_job_heartbeats"
down_revision = "0003_file_chunks"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("translation_queue", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("heartbeat_at", common.db.UTCDateTime(timezone=True), nullable=True)
        )
    # Jobs claimed before the upgrade count as alive since their claim.
    op.execute("UPDATE translation_queue SET heartbeat_at = claimed_at WHERE status = 'processing'")


def downgrade() -> None:
    with op.batch_alter_table("translation_queue", schema=None) as batch_op:
        batch_op.drop_column("heartbeat_at")
