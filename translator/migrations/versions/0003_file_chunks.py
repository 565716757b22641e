"""documents kept in the database, in chunks (TRANSLATOR_FILE_STORAGE=database)

Revision ID: 0003_file_chunks
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import common.db

revision = "0003_file_chunks"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stored_files",
        sa.Column("key", sa.String(length=1024), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("chunks", sa.Integer(), nullable=False),
        sa.Column("created_at", common.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_stored_files")),
    )
    op.create_index(op.f("ix_stored_files_created_at"), "stored_files", ["created_at"])
    op.create_table(
        "file_chunks",
        sa.Column("key", sa.String(length=1024), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["key"],
            ["stored_files.key"],
            name=op.f("fk_file_chunks_key_stored_files"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("key", "seq", name=op.f("pk_file_chunks")),
    )


def downgrade() -> None:
    op.drop_table("file_chunks")
    op.drop_index(op.f("ix_stored_files_created_at"), table_name="stored_files")
    op.drop_table("stored_files")
