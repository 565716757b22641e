"""feed tokens: one calendar feed token (hashed) per account

Revision ID: i0002
Revises: i0001
Create Date: 2026-12-05 17:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import common.db

revision = "i0002"
down_revision = "i0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "identity_feed_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("hint", sa.String(length=16), nullable=False),
        sa.Column("created_at", common.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["identity_accounts.id"],
            name=op.f("fk_identity_feed_tokens_account_id_identity_accounts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_feed_tokens")),
        sa.UniqueConstraint("account_id", name=op.f("uq_identity_feed_tokens_account_id")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_identity_feed_tokens_token_hash")),
    )


def downgrade() -> None:
    op.drop_table("identity_feed_tokens")
