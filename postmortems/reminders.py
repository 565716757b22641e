"""Reminders through the sentinel's channels: a postmortem owed (due 3 calendar
days after resolution for P0/P1, 5 business days for P2) and action items past
their due date. Each repeats at ``POSTMORTEM_REMINDER_INTERVAL_HOURS`` until
what it asks for is done; when it was last sent is stored, so a restart neither
loses nor doubles one.

Delivery is an announcement (contract 1): ``sentinel.alerting.announcements.
announce`` in-process, or any ``Sender`` given (tests, HTTP)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from common.logs import get_logger
from postmortems.markdown import duration
from postmortems.models import (
    DONE_ACTION_STATUSES,
    ActionItem,
    Incident,
    IncidentStatus,
    Reminder,
)
from postmortems.service import Postmortems

log = get_logger("postmortems.reminders")


class ReminderMessage(BaseModel):
    """An announcement (contract 1's fields)."""

    key: str
    title: str
    text: str
    state: str = "reminder"  # "reminder-N" for the N-th sending
    severity: str = "warning"
    labels: dict[str, str] = {}
    to: list[str] | None = None
    incident_id: int


# send(message) -> how many notifications it made
Sender = Callable[[ReminderMessage], int]


def sentinel_sender(
    sentinel_db: Any, now: Callable[[], datetime], alerting_config: Any = None
) -> Sender:
    """Deliver through the sentinel's announcement channels, in-process, with the
    sentinel's alerting configuration (``SENTINEL_ALERTING``) unless one is given."""
    from sentinel.alerting.announcements import Announcement, UnknownRecipient, announce
    from sentinel.alerting.config import load_alerting_config
    from sentinel.settings import SentinelSettings

    config = alerting_config or load_alerting_config(SentinelSettings().alerting)

    def send(message: ReminderMessage) -> int:
        fields = message.model_dump(exclude={"incident_id"}, exclude_none=True)
        try:
            return int(announce(sentinel_db, Announcement(**fields), now(), config))
        except UnknownRecipient as exc:
            # Someone the alerting configuration does not know: tell the channels instead.
            log.warning("reminder.unknown_recipient", key=message.key, error=str(exc))
            fields.pop("to", None)
            return int(announce(sentinel_db, Announcement(**fields), now(), config))

    return send


def http_sender(sentinel_url: str, token: str | None = None, **client: Any) -> Sender:
    """Deliver through ``POST {sentinel}/api/announcements``."""
    import httpx

    def send(message: ReminderMessage) -> int:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        body = message.model_dump(exclude={"incident_id"}, exclude_none=True)
        url = f"{sentinel_url.rstrip('/')}/api/announcements"
        with httpx.Client(timeout=10.0, **client) as http:
            response = http.post(url, json=body, headers=headers)
            if response.status_code == 422 and "to" in body:
                # A recipient the sentinel does not know: tell the channels instead.
                log.warning("reminder.recipient_refused", key=message.key, body=response.text)
                body.pop("to")
                response = http.post(url, json=body, headers=headers)
            response.raise_for_status()
            return int(response.json().get("notifications", 0))

    return send


@dataclass
class Reminders:
    service: Postmortems
    sender: Sender

    @property
    def interval(self) -> timedelta:
        return timedelta(hours=self.service.settings.reminder_interval_hours)

    def due(self) -> list[ReminderMessage]:
        """Every reminder owed now (whether or not it was sent recently)."""
        now = self.service.clock.now()
        timing = self.service.timing
        assert timing is not None
        base = self.service.settings.public_url.rstrip("/")
        messages: list[ReminderMessage] = []
        with self.service.db.session() as s:
            owed = s.scalars(
                select(Incident)
                .options(selectinload(Incident.postmortem))  # one query, not one each
                .where(Incident.status == IncidentStatus.resolved)
                .order_by(Incident.id)
            )
            for i in owed:
                if i.postmortem is not None and i.postmortem.complete:
                    continue
                due = timing.postmortem_due(i.severity, i.resolved_at)
                if due is None:
                    continue
                left = due - now
                when = (
                    f"due in {duration(left.total_seconds())}"
                    if left > timedelta(0)
                    else (f"overdue by {duration(-left.total_seconds())}")
                )
                messages.append(
                    ReminderMessage(
                        key=f"postmortem:{i.id}",
                        title=f"Postmortem of incident #{i.id} {when}",
                        text=(
                            f"[{i.severity.value}] {i.title} ({i.service}) was resolved "
                            f"{i.resolved_at:%Y-%m-%d %H:%M} UTC; its postmortem is due "
                            f"{due:%Y-%m-%d %H:%M} UTC. Fill it in: {base}/incidents/{i.id}"
                        ),
                        severity="warning" if left <= timedelta(0) else "info",
                        labels={"service": i.service, "incident": str(i.id)},
                        to=[i.lead] if i.lead else None,
                        incident_id=i.id,
                    )
                )
            overdue = s.execute(
                select(ActionItem, Incident)
                .join(Incident, Incident.id == ActionItem.incident_id)
                .where(
                    ActionItem.status.not_in(DONE_ACTION_STATUSES),
                    ActionItem.due_date < now.date(),
                )
                .order_by(ActionItem.due_date, ActionItem.id)
            )
            for action, incident in overdue:
                days = (now.date() - action.due_date).days
                messages.append(
                    ReminderMessage(
                        key=f"action:{action.id}",
                        title=f"Action item #{action.id} is {days} day(s) overdue",
                        text=(
                            f"{action.kind.value} action for incident #{incident.id} "
                            f"({incident.title}): {action.title}. Owner {action.owner}, due "
                            f"{action.due_date}. {base}/incidents/{incident.id}#actions"
                        ),
                        labels={"service": incident.service, "incident": str(incident.id)},
                        to=[action.owner],
                        incident_id=incident.id,
                    )
                )
        return messages

    def run_once(self) -> list[ReminderMessage]:
        """Send what is owed and was not sent within the interval; returns what was sent."""
        now = self.service.clock.now()
        sent: list[ReminderMessage] = []
        for message in self.due():
            with self.service.db.session() as s:
                row = s.scalar(select(Reminder).where(Reminder.key == message.key))
                if row is not None and now - row.last_sent_at < self.interval:
                    continue
                # One message per key, updated in place; each repeat is a new state,
                # so the sentinel delivers it again instead of deduplicating it.
                message = message.model_copy(
                    update={"state": f"reminder-{(row.count if row else 0) + 1}"}
                )
                try:
                    notifications = self.sender(message)
                except Exception as exc:  # noqa: BLE001 - retried next run, others still go
                    log.warning("reminder.failed", key=message.key, error=str(exc))
                    continue
                if row is None:
                    row = Reminder(
                        key=message.key, incident_id=message.incident_id, last_sent_at=now, count=0
                    )
                    s.add(row)
                row.last_sent_at = now
                row.count += 1
                log.info(
                    "reminder.sent",
                    key=message.key,
                    incident_id=message.incident_id,
                    count=row.count,
                    notifications=notifications,
                )
                sent.append(message)
        return sent
