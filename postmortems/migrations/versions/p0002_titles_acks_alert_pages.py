"""incident title author and acknowledger, linked alerts' series, labels, page

Who wrote an incident's title (a person's is kept), who acknowledged it, and for
each linked alert its series, labels and alert group (the page).

Revision ID: p0002
Revises: p0001
Create Date: 2026-12-04 16:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "p0002"
down_revision = "p0001"
branch_labels = None
depends_on = None

# Incidents the platform opened; any other source had its title typed by a person.
AUTOMATIC_SOURCES = ("watcher", "release_gate")


def upgrade() -> None:
    with op.batch_alter_table("pm_incidents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("title_author", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("acknowledged_by", sa.String(length=128), nullable=True))
    with op.batch_alter_table("pm_incident_alerts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("series", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("labels", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("group_id", sa.Integer(), nullable=True))
    # Titles of incidents people opened stay theirs (the source names the door).
    incidents = sa.table(
        "pm_incidents", sa.column("title_author", sa.String), sa.column("source", sa.String)
    )
    op.execute(
        incidents.update()
        .where(incidents.c.source.not_in(AUTOMATIC_SOURCES))
        .values(title_author=incidents.c.source)
    )
    # The platform's own titles are shortened to fit (a person's words are left alone).
    titled = sa.table(
        "pm_incidents",
        sa.column("id", sa.Integer),
        sa.column("title", sa.String),
        sa.column("source", sa.String),
    )
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(titled.c.id, titled.c.title).where(titled.c.source.in_(AUTOMATIC_SOURCES))
    ).all()
    for incident_id, title in rows:
        if len(title) >= 80:
            bind.execute(
                titled.update().where(titled.c.id == incident_id).values(title=_fit(title))
            )


def _fit(title: str, limit: int = 79) -> str:
    """As ``postmortems.titles.fit_title`` did when this migration was written."""
    text = " ".join(title.split())
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space >= len(cut) - 20 and space > 0:
        cut = cut[:space]
    return cut.rstrip(" ,;:.-–(/[{") + "…"


def downgrade() -> None:
    with op.batch_alter_table("pm_incident_alerts", schema=None) as batch_op:
        batch_op.drop_column("group_id")
        batch_op.drop_column("labels")
        batch_op.drop_column("series")
    with op.batch_alter_table("pm_incidents", schema=None) as batch_op:
        batch_op.drop_column("acknowledged_by")
        batch_op.drop_column("title_author")
