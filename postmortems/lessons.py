"""The do's and don'ts registry (seed 003): every closed incident's lessons,
linked to their incident, searchable by words, kind, service and class."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import and_, func, select

from postmortems.db import Database
from postmortems.models import Incident, Lesson


class LessonOut(BaseModel):
    id: int
    kind: str
    text: str
    incident_id: int | None
    incident_title: str | None
    service: str | None
    incident_class: str | None
    created_at: datetime


def search(
    db: Database,
    query: str | None = None,
    *,
    kind: str | None = None,
    service: str | None = None,
    incident_class: str | None = None,
    limit: int = 200,
) -> list[LessonOut]:
    """Lessons whose text holds every word of ``query`` (case-insensitive), newest first."""
    stmt = (
        select(Lesson, Incident.title)
        .outerjoin(Incident, Incident.id == Lesson.incident_id)
        .order_by(Lesson.id.desc())
        .limit(limit)
    )
    words = (query or "").split()
    if words:
        stmt = stmt.where(and_(*(func.lower(Lesson.text).contains(w.lower()) for w in words)))
    if kind:
        stmt = stmt.where(Lesson.kind == kind)
    if service:
        stmt = stmt.where(Lesson.service == service)
    if incident_class:
        stmt = stmt.where(Lesson.incident_class == incident_class)
    with db.session() as s:
        return [
            LessonOut(
                id=lesson.id,
                kind=lesson.kind.value,
                text=lesson.text,
                incident_id=lesson.incident_id,
                incident_title=title,
                service=lesson.service,
                incident_class=lesson.incident_class,
                created_at=lesson.created_at,
            )
            for lesson, title in s.execute(stmt)
        ]
