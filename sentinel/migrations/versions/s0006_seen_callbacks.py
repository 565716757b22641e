"""seen callbacks: signed Twilio and Slack callbacks already acted on

Revision ID: s0006
Revises: s0005
Create Date: 2026-12-04 20:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import common.db

revision = "s0006"
down_revision = "s0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "seen_callbacks",
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("via", sa.String(length=16), nullable=False),
        sa.Column("seen_at", common.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", common.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("digest", name=op.f("pk_seen_callbacks")),
    )
    with op.batch_alter_table("seen_callbacks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_seen_callbacks_expires_at"), ["expires_at"])


def downgrade() -> None:
    with op.batch_alter_table("seen_callbacks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_seen_callbacks_expires_at"))
    op.drop_table("seen_callbacks")
