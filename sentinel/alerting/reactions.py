"""What happens after a page leaves: provider callbacks are recorded, and a page
that did not reach a person falls back to that person's next channel (SMS
undelivered → call) and, once the person's channels are spent or a call was
not answered by a human, the group moves to its next escalation step now
instead of waiting out the step."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from common.logs import get_logger
from sentinel.alerting.channels.twilio_voice import answered_by_human
from sentinel.alerting.config import AlertingConfig
from sentinel.alerting.models import AlertGroup, GroupState
from sentinel.alerting.outbox import enqueue
from sentinel.models import DeliveryAttempt, Notification

log = get_logger(__name__)

# Twilio's final statuses (Messages: MessageStatus; Calls: CallStatus).
SMS_DELIVERED = {"delivered", "read"}
SMS_NOT_DELIVERED = {"undelivered", "failed"}
CALL_NOT_REACHED = {"busy", "no-answer", "failed", "canceled"}


@dataclass(frozen=True)
class Outcome:
    """What a callback told us about a notification."""

    reached: bool | None  # True: a person got it; False: they did not; None: not final yet
    status: str


def sms_outcome(message_status: str) -> Outcome:
    status = message_status.lower()
    if status in SMS_DELIVERED:
        return Outcome(True, status)
    if status in SMS_NOT_DELIVERED:
        return Outcome(False, status)
    return Outcome(None, status)


def call_outcome(call_status: str, answered_by: str | None) -> Outcome:
    """A call counts only when a human answered: voicemail is not a person."""
    status = call_status.lower()
    if status in CALL_NOT_REACHED:
        return Outcome(False, status)
    if status in ("in-progress", "completed", "answered") and answered_by:
        label = f"{status}/{answered_by}"
        return Outcome(answered_by_human(answered_by), label)
    if status == "completed":
        return Outcome(False, "completed/unknown")  # ended without a human confirmed
    return Outcome(None, status)


class Reactions:
    def __init__(self, config: AlertingConfig) -> None:
        self.config = config

    def on_failed(self, s: Session, row: Notification, now: datetime) -> None:
        """The dispatcher gave up on ``row`` (retries spent or a permanent error)."""
        self._not_reached(s, row, now, reason=row.last_error or "failed")

    def on_stalled(self, s: Session, row: Notification, now: datetime) -> None:
        """A person's page keeps failing at the provider (it keeps retrying too):
        try the person's next channel as well. The escalation is not hurried: a
        provider outage is not the person being unreachable."""
        self._fall_back(s, row, now, reason=row.last_error or "provider failing")

    def on_callback(self, s: Session, row: Notification, outcome: Outcome, now: datetime) -> None:
        s.add(
            DeliveryAttempt(
                notification_id=row.id,
                at=now,
                ok=outcome.reached is not False,
                status=outcome.status[:32],
                provider_id=row.provider_id,
                error=None if outcome.reached is not False else f"not reached: {outcome.status}",
                source="callback",
            )
        )
        log.info(
            "notification.callback",
            notification_id=row.id,
            key=row.key,
            channel=row.channel,
            status=outcome.status,
        )
        if outcome.reached is True and row.confirmed_at is None:
            row.confirmed_at = now
        elif outcome.reached is False:
            self._not_reached(s, row, now, reason=outcome.status)

    def _not_reached(self, s: Session, row: Notification, now: datetime, reason: str) -> None:
        if row.person is None or row.payload.get("beside"):
            return  # a broadcast, or sent beside the person's first channel: no chain of its own
        fallback = self._fall_back(s, row, now, reason)
        voice_unanswered = row.channel == "voice"
        if (not fallback or voice_unanswered) and row.group_id is not None:
            escalate_now(s, row.group_id, row.step, now, reason)

    def _fall_back(self, s: Session, row: Notification, now: datetime, reason: str) -> list[str]:
        """Queue the person's next channel; returns the chain that was left."""
        if row.person is None:
            return []
        fallback = list(row.payload.get("fallback") or [])
        contact = self.config.people.get(row.person)
        if fallback and contact is not None:
            channel = fallback[0]
            address = contact.address(channel, row.person)
            if address is not None:
                added = enqueue(
                    s,
                    f"{row.key}:fallback:{channel}",
                    channel,
                    address,
                    {**row.payload, "fallback": fallback[1:]},
                    now,
                    alert_id=row.alert_id,
                    group_id=row.group_id,
                    person=row.person,
                    step=row.step,
                )
                if added:
                    log.warning(
                        "notification.fallback",
                        key=row.key,
                        person=row.person,
                        to_channel=channel,
                        reason=reason,
                    )
        return fallback


def escalate_now(s: Session, group_id: int, step: int | None, now: datetime, reason: str) -> None:
    """Cut the current step's wait short: its person could not be reached."""
    group = s.get(AlertGroup, group_id, with_for_update=True)
    if group is None or group.state is not GroupState.open or step != group.step:
        return  # acknowledged meanwhile, or the escalation has already moved on
    if group.next_escalation_at is None or group.next_escalation_at > now:
        group.next_escalation_at = now
        group.notify_at = now
        log.warning("escalation.hastened", group_id=group_id, step=step + 1, reason=reason)


def find_by_provider_id(s: Session, provider_id: str) -> Notification | None:
    return s.scalar(select(Notification).where(Notification.provider_id == provider_id).limit(1))
