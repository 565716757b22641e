"""The notification outbox and its dispatcher.

A notification is written as a row in the same transaction that decides it,
and only then sent. The dispatcher claims due rows with a lease (one UPDATE,
``FOR UPDATE SKIP LOCKED`` on PostgreSQL), sends, and records the attempt. A
dispatcher killed mid-send leaves its rows in ``sending``; once the lease runs
out another claims them again: nothing is lost, and a notification is sent at
most one extra time (the notification id travels as an idempotency key)."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from common.clock import Clock
from common.logs import get_logger
from sentinel.alerting.channels.base import Channel, Message
from sentinel.db import Database
from sentinel.models import DeliveryAttempt, Notification, NotificationStatus

log = get_logger(__name__)


class Result(Protocol):
    """What a channel answers (``sentinel.alerting.channels.base.DeliveryResult``)."""

    ok: bool
    retryable: bool
    provider_id: str | None
    retry_after: float | None
    error: str | None
    status: str


@dataclass(frozen=True)
class Outgoing:
    """A claimed notification, as a channel sees it."""

    id: int
    key: str
    channel: str
    recipient: str
    payload: dict[str, Any]
    attempt: int
    token: str


Send = Callable[[Outgoing], Result]


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    backoff_seconds: float = 2.0
    max_backoff_seconds: float = 300.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        delay = self.backoff_seconds * 2 ** (attempt - 1)
        if retry_after is not None:
            delay = max(delay, retry_after)  # Slack's and Twilio's 429 Retry-After
        return min(delay, self.max_backoff_seconds)


def enqueue(
    session: Session,
    key: str,
    channel: str,
    recipient: str,
    payload: dict[str, Any],
    now: datetime,
    alert_id: int | None = None,
) -> bool:
    """Add a notification in the caller's transaction; False if ``key`` exists."""
    try:
        with session.begin_nested():
            session.add(
                Notification(
                    key=key,
                    alert_id=alert_id,
                    channel=channel,
                    recipient=recipient,
                    payload=payload,
                    status=NotificationStatus.pending,
                    attempts=0,
                    next_attempt_at=now,
                    created_at=now,
                )
            )
        return True
    except IntegrityError:
        return False


def claim(db: Database, now: datetime, lease: timedelta, limit: int) -> list[Outgoing]:
    """Take up to ``limit`` due notifications (new, retrying, or orphaned by a
    dead dispatcher whose lease ran out)."""
    token = secrets.token_hex(8)
    due = (
        select(Notification.id)
        .where(
            or_(
                and_(
                    Notification.status == NotificationStatus.pending,
                    Notification.next_attempt_at <= now,
                ),
                and_(
                    Notification.status == NotificationStatus.sending,
                    Notification.lease_until <= now,
                ),
            )
        )
        .order_by(Notification.next_attempt_at, Notification.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    with db.session() as s:
        rows = s.execute(
            update(Notification)
            .where(Notification.id.in_(due.scalar_subquery()))
            .values(
                status=NotificationStatus.sending,
                lease_until=now + lease,
                claim_token=token,
                attempts=Notification.attempts + 1,
            )
            .returning(
                Notification.id,
                Notification.key,
                Notification.channel,
                Notification.recipient,
                Notification.payload,
                Notification.attempts,
            )
            .execution_options(synchronize_session=False)
        ).all()
    return [Outgoing(*row, token=token) for row in sorted(rows)]


def record(
    db: Database, item: Outgoing, result: Result, now: datetime, policy: RetryPolicy
) -> NotificationStatus | None:
    """Store the attempt and the notification's next state (None: claim lost)."""
    with db.session() as s:
        row = s.get(Notification, item.id, with_for_update=True)
        if row is None or row.claim_token != item.token:
            return None  # another dispatcher took it over after our lease ran out
        s.add(
            DeliveryAttempt(
                notification_id=item.id,
                at=now,
                ok=result.ok,
                status=result.status,
                provider_id=result.provider_id,
                error=result.error,
            )
        )
        row.lease_until = None
        row.claim_token = None
        row.provider_id = result.provider_id or row.provider_id
        if result.ok:
            row.status = NotificationStatus.sent
            row.sent_at = now
            row.last_error = None
        elif result.retryable and item.attempt < policy.max_attempts:
            row.status = NotificationStatus.pending
            row.next_attempt_at = now + timedelta(
                seconds=policy.delay(item.attempt, result.retry_after)
            )
            row.last_error = result.error
        else:
            row.status = NotificationStatus.failed
            row.last_error = result.error
        status = row.status
    level = log.info if result.ok else log.warning
    level(
        "notification.attempt",
        notification_id=item.id,
        channel=item.channel,
        attempt=item.attempt,
        outcome=status.value,
        error=result.error,
    )
    return status


@dataclass(frozen=True)
class _Failure:
    """A channel that raised: counted as a retryable failure."""

    error: str
    ok: bool = False
    retryable: bool = True
    provider_id: str | None = None
    retry_after: float | None = None
    status: str = "error"


class Dispatcher:
    def __init__(
        self,
        db: Database,
        channels: Mapping[str, Send],
        clock: Clock,
        policy: RetryPolicy | None = None,
        lease: timedelta = timedelta(minutes=2),
        batch: int = 100,
    ) -> None:
        self.db, self.channels, self.clock = db, channels, clock
        self.policy = policy or RetryPolicy()
        self.lease, self.batch = lease, batch

    def run_once(self) -> int:
        """Send what is due now; returns how many were attempted."""
        items = claim(self.db, self.clock.now(), self.lease, self.batch)
        for item in items:
            send = self.channels.get(item.channel)
            try:
                result: Result = (
                    send(item)
                    if send is not None
                    else _Failure(f"no channel {item.channel!r}", retryable=False)
                )
            except Exception as exc:  # a channel bug must not stop the others
                log.exception("notification.channel_crashed", channel=item.channel)
                result = _Failure(f"{type(exc).__name__}: {exc}")
            record(self.db, item, result, self.clock.now(), self.policy)
        return len(items)


def via(channel: Channel) -> Send:
    """Adapt a delivery channel to the dispatcher: the stored payload becomes
    the channel's Message, with the outbox key as its idempotency key."""

    def send(item: Outgoing) -> Result:
        p = item.payload
        return channel.send(
            Message(
                notification_id=item.key,
                recipient=item.recipient,
                subject=p.get("subject", ""),
                text=p["text"],
                fingerprint=p.get("fingerprint", ""),
                severity=p.get("severity", ""),
                state=p.get("state", ""),
                slack_ts=p.get("slack_ts"),
                links=p.get("links", {}),
            )
        )

    return send
