"""one pending tuning proposal per series

Revision ID: s0009
Revises: s0008
Create Date: 2026-12-05 17:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "s0009"
down_revision = "s0008"
branch_labels = None
depends_on = None

PENDING = sa.text("status = 'proposed'")


def upgrade() -> None:
    # Re-tunes could leave several proposals waiting on one series: keep the newest
    # waiting, mark the older ones superseded (kept, as `tunings.record` now does).
    op.execute(
        "UPDATE tunings SET status = 'superseded' WHERE status = 'proposed' AND id NOT IN"
        " (SELECT newest FROM (SELECT max(id) AS newest FROM tunings"
        " WHERE status = 'proposed' GROUP BY signal, series) AS pending)"
    )
    with op.batch_alter_table("tunings", schema=None) as batch_op:
        batch_op.create_index(
            "uq_tunings_one_proposal",
            ["signal", "series"],
            unique=True,
            sqlite_where=PENDING,
            postgresql_where=PENDING,
        )


def downgrade() -> None:
    with op.batch_alter_table("tunings", schema=None) as batch_op:
        batch_op.drop_index("uq_tunings_one_proposal")
