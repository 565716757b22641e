"""Announcements through the alert channels: releases (started, canary
verdict, promoted, rolled back), postmortem reminders, anything a person or
a team channel must hear that is not an alert. One key is one message: each
new state of the same key edits the Slack message in place."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from common.logs import get_logger
from sentinel.alerting.config import AlertingConfig, load_alerting_config
from sentinel.alerting.outbox import enqueue
from sentinel.db import Database

log = get_logger(__name__)

# A person is told on the first of these they can be reached by.
PERSONAL_ORDER = ("slack", "sms", "console")
_SEVERITY_LABEL = {"info": "INFO", "warning": "P2", "critical": "P1"}


class Announcement(BaseModel):
    key: str = Field(min_length=1, max_length=160, pattern=r"^[\w.:/@#-]+$")
    title: str = Field(min_length=1, max_length=200)
    text: str = Field(min_length=1, max_length=2000)
    state: str = Field(min_length=1, max_length=32)
    severity: Literal["info", "warning", "critical"] = "info"
    labels: dict[str, str] = {}
    # People to tell (ids from the alerting configuration); absent: the
    # announcement channels.
    to: list[str] | None = None


class UnknownRecipient(ValueError):
    pass


def announce(
    db: Database,
    announcement: Announcement,
    now: datetime,
    config: AlertingConfig | None = None,
) -> int:
    """Write the announcement's notifications to the outbox; returns how many
    (0 when this key already announced this state)."""
    config = config or load_alerting_config()
    targets = _targets(config, announcement)
    payload = {
        "subject": announcement.title,
        "text": f"{announcement.title}: {announcement.text}",
        "fingerprint": f"announcement:{announcement.key}",
        "severity": _SEVERITY_LABEL[announcement.severity],
        "state": announcement.state,
        "labels": announcement.labels,
    }
    made = 0
    with db.session() as s:
        for channel, recipient, who in targets:
            ref = f"ann:{announcement.key}:{channel}:{recipient}"
            key = f"ann:{announcement.key}:{announcement.state}:{channel}:{recipient}"
            made += enqueue(s, key, channel, recipient, {**payload, "ref": ref}, now, person=who)
    log.info(
        "announcement.queued",
        key=announcement.key,
        state=announcement.state,
        notifications=made,
    )
    return made


def _targets(config: AlertingConfig, a: Announcement) -> list[tuple[str, str, str | None]]:
    if a.to is None:
        return [(b.channel, b.to, None) for b in config.announcements.broadcast] or [
            ("console", "announcements", None)
        ]
    out = []
    for person in a.to:
        contact = config.people.get(person)
        if contact is None:
            raise UnknownRecipient(f"no person {person!r} in the alerting configuration")
        channel = next(c for c in PERSONAL_ORDER if contact.address(c, person) is not None)
        out.append((channel, str(contact.address(channel, person)), person))
    return out
