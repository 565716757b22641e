"""Open action items across incidents, for a list people work from: overdue ones first
(due before today and not done), then by due date, each with its incident's title."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select

from postmortems.models import DONE_ACTION_STATUSES, Incident
from postmortems.schemas import ActionOut
from postmortems.service import Postmortems


@dataclass(frozen=True)
class OpenAction:
    action: ActionOut
    incident_title: str
    overdue: bool


def is_overdue(action: ActionOut, today: date) -> bool:
    """Due before today and neither done nor cancelled."""
    done = {str(s) for s in DONE_ACTION_STATUSES}
    return action.due_date < today and action.status not in done


def overdue_count(actions: Iterable[ActionOut], today: date) -> int:
    return sum(1 for a in actions if is_overdue(a, today))


def open_actions(pm: Postmortems, today: date) -> list[OpenAction]:
    """Every action item not done yet, overdue first, then soonest due (then oldest)."""
    items = pm.actions()  # already excludes done and cancelled ones
    ids = {a.incident_id for a in items}
    with pm.db.session() as s:
        query = select(Incident.id, Incident.title).where(Incident.id.in_(ids))
        titles: dict[int, str] = {i: title for i, title in s.execute(query)}
    found = [OpenAction(a, titles.get(a.incident_id, ""), is_overdue(a, today)) for a in items]
    return sorted(found, key=lambda o: (not o.overdue, o.action.due_date, o.action.id))
