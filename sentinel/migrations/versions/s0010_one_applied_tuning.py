"""one applied tuning per series

Revision ID: s0010
Revises: s0009
Create Date: 2026-12-06 03:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "s0010"
down_revision = "s0009"
branch_labels = None
depends_on = None

APPLIED = sa.text("status = 'applied'")


def upgrade() -> None:
    # The evaluator runs one tuning per series; should two be marked applied (it then
    # took either), keep the newest and mark the older ones superseded.
    op.execute(
        "UPDATE tunings SET status = 'superseded' WHERE status = 'applied' AND id NOT IN"
        " (SELECT newest FROM (SELECT max(id) AS newest FROM tunings"
        " WHERE status = 'applied' GROUP BY signal, series) AS current)"
    )
    with op.batch_alter_table("tunings", schema=None) as batch_op:
        batch_op.create_index(
            "uq_tunings_one_applied",
            ["signal", "series"],
            unique=True,
            sqlite_where=APPLIED,
            postgresql_where=APPLIED,
        )


def downgrade() -> None:
    with op.batch_alter_table("tunings", schema=None) as batch_op:
        batch_op.drop_index("uq_tunings_one_applied")
