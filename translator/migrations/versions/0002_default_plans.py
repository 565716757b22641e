"""default subscription plans with file-size limits (seed 000 §3.2)

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

plans = sa.table(
    "subscription_plans",
    sa.column("code", sa.String),
    sa.column("name", sa.String),
    sa.column("price_cents", sa.Integer),
    sa.column("currency", sa.String),
    sa.column("period_days", sa.Integer),
    sa.column("max_file_size_mb", sa.Integer),
    sa.column("max_total_upload_size_mb", sa.Integer),
)

DEFAULT_PLANS = [
    {
        "code": "free",
        "name": "Free",
        "price_cents": 0,
        "max_file_size_mb": 2,
        "max_total_upload_size_mb": 20,
    },
    {
        "code": "basic",
        "name": "Basic",
        "price_cents": 990,
        "max_file_size_mb": 10,
        "max_total_upload_size_mb": 500,
    },
    {
        "code": "pro",
        "name": "Pro",
        "price_cents": 2990,
        "max_file_size_mb": 50,
        "max_total_upload_size_mb": None,
    },
]


def upgrade() -> None:
    op.bulk_insert(plans, [{**p, "currency": "USD", "period_days": 30} for p in DEFAULT_PLANS])


def downgrade() -> None:
    op.execute(plans.delete().where(plans.c.code.in_([p["code"] for p in DEFAULT_PLANS])))
