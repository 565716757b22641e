"""The notification outbox: the rows, and how dispatchers claim and settle them.

A notification is written as a row in the same transaction that decides it,
and only then sent. A dispatcher (``sentinel.alerting.dispatcher``) claims due
rows with a short lease (one UPDATE, ``FOR UPDATE SKIP LOCKED`` on
PostgreSQL) that its heartbeat renews while it works, sends, and records the
attempt together with the provider's id. A dispatcher killed mid-send leaves
its rows in ``sending``; seconds later another claims them, marked
``taken_over``, and asks the provider whether the first try went out before
sending again: nothing is lost, and a page goes out at most one extra time
(the delivery log says which pages may have).

A person's page for a live group never gives up on a provider failure: it
keeps retrying (bounded back-off) until it is sent or its group is
acknowledged or resolved, and goes out at once when its channel recovers."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import and_, case, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from common.logs import get_logger
from sentinel.alerting.channels.base import Channel, Found, Message
from sentinel.alerting.models import AlertGroup, ChannelHealth, GroupState, MessageRef
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
    # A dead dispatcher's claim: the provider may already have it (``provider_id``
    # if that dispatcher lived to record it).
    taken_over: bool = False
    provider_id: str | None = None
    created_at: datetime | None = None


Send = Callable[[Outgoing], Result]


@dataclass(frozen=True)
class RetryPolicy:
    # Messages nobody waits on (broadcasts, announcements, resolve notices) give up
    # after this many attempts; a person's page for a live group never gives up,
    # but after this many its person's next channel is tried as well.
    max_attempts: int = 5
    backoff_seconds: float = 2.0
    # The longest wait between two tries: during an outage, how soon a page
    # notices the provider is back (the first success brings every waiting
    # page of that channel forward at once).
    max_backoff_seconds: float = 30.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        delay = min(self.backoff_seconds * 2 ** min(attempt - 1, 30), self.max_backoff_seconds)
        if retry_after is not None:
            delay = max(delay, retry_after)  # Slack's and Twilio's 429 Retry-After
        return delay


def enqueue(
    session: Session,
    key: str,
    channel: str,
    recipient: str,
    payload: dict[str, Any],
    now: datetime,
    alert_id: int | None = None,
    *,
    group_id: int | None = None,
    person: str | None = None,
    step: int | None = None,
    held: bool = False,
) -> bool:
    """Add a notification in the caller's transaction; False if ``key`` exists.
    A message that edits an earlier one in place (``payload["ref"]``) makes any
    older unsent edit of it pointless: that one is folded into this. Likewise a
    new page of a group to a person on a channel folds that person's older
    unsent page of the group on the same channel (during a provider outage the
    escalation's steps and repeats pile up; after it, one page each goes out)."""
    try:
        with session.begin_nested():
            row = Notification(
                key=key,
                alert_id=alert_id,
                channel=channel,
                recipient=recipient,
                payload=payload,
                status=NotificationStatus.held if held else NotificationStatus.pending,
                attempts=0,
                next_attempt_at=now,
                created_at=now,
                group_id=group_id,
                person=person,
                step=step,
            )
            session.add(row)
            session.flush()
    except IntegrityError:
        return False
    if held:
        return True
    older = [
        Notification.id != row.id,
        Notification.channel == channel,
        Notification.recipient == recipient,
        Notification.status == NotificationStatus.pending,
    ]
    ref = payload.get("ref")
    if ref:
        older.append(Notification.payload["ref"].as_string() == ref)
    elif group_id is not None and person is not None and payload.get("state") == "firing":
        older += [
            Notification.group_id == group_id,
            Notification.person == person,
            Notification.attempts > 0,  # only pages that already tried and failed
        ]
    else:
        return True
    session.execute(
        update(Notification)
        .where(*older)
        .values(status=NotificationStatus.bundled, bundled_into=row.id)
        .execution_options(synchronize_session=False)
    )
    return True


def _due(now: datetime) -> Any:
    return or_(
        and_(
            Notification.status == NotificationStatus.pending, Notification.next_attempt_at <= now
        ),
        and_(Notification.status == NotificationStatus.sending, Notification.lease_until <= now),
    )


def claim(
    db: Database,
    now: datetime,
    lease: timedelta,
    limit: int,
    skip_channels: Iterable[str] = (),
) -> list[Outgoing]:
    """Take up to ``limit`` due notifications (new, retrying, or orphaned by a
    dead dispatcher whose lease ran out), except on ``skip_channels``. A page
    whose group was acknowledged or resolved meanwhile is cancelled, not sent."""
    if limit <= 0:
        return []
    token = secrets.token_hex(8)
    due = select(Notification.id).where(_due(now))
    skip = list(skip_channels)
    if skip:
        due = due.where(Notification.channel.not_in(skip))
    due = (
        due.order_by(Notification.next_attempt_at, Notification.id)
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
                # SET sees the old row: a row still ``sending`` was a dead dispatcher's.
                taken_over=case(
                    (Notification.status == NotificationStatus.sending, True),
                    else_=Notification.taken_over,
                ),
            )
            .returning(
                Notification.id,
                Notification.key,
                Notification.channel,
                Notification.recipient,
                Notification.payload,
                Notification.attempts,
                Notification.taken_over,
                Notification.provider_id,
                Notification.created_at,
                Notification.group_id,
                Notification.person,
            )
            .execution_options(synchronize_session=False)
        ).all()
        stale = _pages_of_settled_groups(s, rows)
        if stale:
            _cancel(s, stale, now)
    items = [
        Outgoing(
            id=r.id,
            key=r.key,
            channel=r.channel,
            recipient=r.recipient,
            payload=r.payload,
            attempt=r.attempts,
            token=token,
            taken_over=bool(r.taken_over),
            provider_id=r.provider_id,
            created_at=r.created_at,
        )
        for r in rows
        if r.id not in stale
    ]
    return sorted(items, key=lambda item: item.id)


def _pages_of_settled_groups(s: Session, rows: Sequence[Any]) -> set[int]:
    pages = {
        r.id: r.group_id
        for r in rows
        if r.group_id is not None and r.person is not None and r.payload.get("state") == "firing"
    }
    if not pages:
        return set()
    settled = set(
        s.scalars(
            select(AlertGroup.id).where(
                AlertGroup.id.in_(set(pages.values())), AlertGroup.state != GroupState.open
            )
        )
    )
    return {nid for nid, gid in pages.items() if gid in settled}


def _cancel(s: Session, ids: set[int], now: datetime) -> None:
    s.execute(
        update(Notification)
        .where(Notification.id.in_(ids))
        .values(status=NotificationStatus.cancelled, lease_until=None, claim_token=None)
        .execution_options(synchronize_session=False)
    )
    for nid in sorted(ids):
        s.add(
            DeliveryAttempt(
                notification_id=nid,
                at=now,
                ok=True,
                status="cancelled",
                error="group acknowledged or resolved before the page went out",
                source="dispatcher",
            )
        )
    log.info("notification.cancelled", count=len(ids), reason="group no longer open")


def renew(db: Database, tokens: Iterable[str], now: datetime, lease: timedelta) -> int:
    """The heartbeat: keep this dispatcher's claims while it is alive."""
    tokens = list(tokens)
    if not tokens:
        return 0
    with db.session() as s:
        result = s.execute(
            update(Notification)
            .where(
                Notification.claim_token.in_(tokens),
                Notification.status == NotificationStatus.sending,
            )
            .values(lease_until=now + lease)
            .execution_options(synchronize_session=False)
        )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def release(
    db: Database, unsent: Sequence[Outgoing], unsettled: Sequence[Outgoing], now: datetime
) -> None:
    """Hand claims back on the way out: ``unsent`` never reached a channel (due
    again at once, the claim not counted as an attempt); ``unsettled`` are
    sends whose answer never came, so whoever takes them asks the provider first."""
    with db.session() as s:
        for item in unsent:
            s.execute(
                update(Notification)
                .where(Notification.id == item.id, Notification.claim_token == item.token)
                .values(
                    status=NotificationStatus.pending,
                    lease_until=None,
                    claim_token=None,
                    attempts=Notification.attempts - 1,
                )
                .execution_options(synchronize_session=False)
            )
        for item in unsettled:
            s.execute(
                update(Notification)
                .where(Notification.id == item.id, Notification.claim_token == item.token)
                .values(
                    status=NotificationStatus.pending,
                    lease_until=None,
                    claim_token=None,
                    taken_over=True,
                    next_attempt_at=now,
                )
                .execution_options(synchronize_session=False)
            )
    if unsent or unsettled:
        log.warning("notification.claims_released", unsent=len(unsent), unsettled=len(unsettled))


OnFailed = Callable[[Session, Notification, datetime], None]


@dataclass(frozen=True)
class Settled:
    """A taken-over page the provider already has: recorded, not sent again."""

    provider_id: str | None
    status: str = "settled"
    ok: bool = True
    retryable: bool = False
    retry_after: float | None = None
    error: str | None = None
    source: str = "lookup"


@dataclass(frozen=True)
class LookupFailed:
    """The provider could not say whether a taken-over page went out: ask again later."""

    error: str
    ok: bool = False
    retryable: bool = True
    provider_id: str | None = None
    retry_after: float | None = None
    status: str = "lookup_failed"
    source: str = "lookup"


@dataclass(frozen=True)
class Carried:
    """``result`` of sending through ``carrier`` (the failover route) or, for a
    taken-over page nobody could look up, a send that may be a duplicate."""

    result: Result
    carrier: str | None = None
    maybe_duplicate: bool = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.result, name)


def record(
    db: Database, item: Outgoing, result: Result, now: datetime, policy: RetryPolicy
) -> NotificationStatus | None:
    """Store the attempt and the notification's next state (None: claim lost)."""
    return record_many(db, [(item, result)], now, policy)[0]


def record_many(
    db: Database,
    outcomes: Sequence[tuple[Outgoing, Result]],
    now: datetime,
    policy: RetryPolicy,
    on_failed: OnFailed | None = None,
    on_stalled: OnFailed | None = None,
) -> list[NotificationStatus | None]:
    """Store a batch of attempts in one transaction. A notification that gives
    up is handed to ``on_failed`` in that same transaction (the fallback to
    another channel is written atomically with the failure); a person's page
    that keeps failing is handed to ``on_stalled`` once (its next channel is
    tried too). Each channel's health is updated, and a channel that just
    recovered has its waiting pages brought forward to now."""
    if not outcomes:
        return []
    statuses: list[NotificationStatus | None] = []
    health: dict[str, Result] = {}
    with db.session() as s:
        ids = [item.id for item, _ in outcomes]
        rows = {
            row.id: row
            for row in s.scalars(
                select(Notification).where(Notification.id.in_(ids)).with_for_update()
            )
        }
        for item, result in outcomes:
            row = rows.get(item.id)
            if row is None or row.claim_token != item.token:
                statuses.append(None)  # another dispatcher took it over after our lease ran out
                continue
            status = _apply(s, row, item, result, now, policy)
            statuses.append(status)
            if status is NotificationStatus.failed and on_failed is not None:
                on_failed(s, row, now)
            elif (
                status is NotificationStatus.pending
                and on_stalled is not None
                and item.attempt == policy.max_attempts
                and _persistent(row)
            ):
                on_stalled(s, row, now)
            ref = item.payload.get("ref")
            if result.ok and ref and result.provider_id:
                _remember_ref(s, ref, item.channel, result.provider_id, now)
            carrier = getattr(result, "carrier", None) or item.channel
            if result.ok or result.retryable:
                health[carrier] = result  # the last word of this batch per channel
        for channel, result in health.items():
            _note_health(s, channel, result, now)
    for (item, result), status in zip(outcomes, statuses, strict=True):
        if status is None:
            continue
        level = log.info if result.ok else log.warning
        level(
            "notification.attempt",
            notification_id=item.id,
            key=item.key,
            channel=item.channel,
            via=getattr(result, "carrier", None) or item.channel,
            attempt=item.attempt,
            outcome=status.value,
            provider_id=result.provider_id,
            error=result.error,
        )
        if getattr(result, "maybe_duplicate", False):
            log.warning(
                "notification.possible_duplicate",
                notification_id=item.id,
                key=item.key,
                channel=item.channel,
                reason="taken over from a dead dispatcher; the provider cannot be asked",
            )
    return statuses


def _persistent(row: Notification) -> bool:
    """A person's page for a live group: provider failures never use it up."""
    return (
        row.person is not None and row.group_id is not None and row.payload.get("state") == "firing"
    )


def _apply(
    s: Session,
    row: Notification,
    item: Outgoing,
    result: Result,
    now: datetime,
    policy: RetryPolicy,
) -> NotificationStatus:
    carrier = getattr(result, "carrier", None)
    note = result.error
    if getattr(result, "maybe_duplicate", False):
        note = "taken over from a dead dispatcher and sent again: may be a duplicate"
    elif carrier:
        note = f"via {carrier}" + (f": {result.error}" if result.error else "")
    s.add(
        DeliveryAttempt(
            notification_id=item.id,
            at=now,
            ok=result.ok,
            status=str(result.status)[:32],
            provider_id=result.provider_id,
            error=note,
            source=getattr(result, "source", "send"),
        )
    )
    row.lease_until = None
    row.claim_token = None
    row.provider_id = result.provider_id or row.provider_id
    if result.status != "lookup_failed":
        row.taken_over = False  # settled either way: the next try is a fresh send
    if getattr(result, "uncertain", False):
        row.taken_over = True  # no answer came: the next try asks the provider first
    if result.ok:
        row.status = NotificationStatus.sent
        row.sent_at = now
        row.last_error = None
    elif result.retryable and (item.attempt < policy.max_attempts or _persistent(row)):
        row.status = NotificationStatus.pending
        row.next_attempt_at = now + timedelta(
            seconds=policy.delay(item.attempt, result.retry_after)
        )
        row.last_error = result.error
    else:
        row.status = NotificationStatus.failed
        row.last_error = result.error
    return row.status


def _note_health(s: Session, channel: str, result: Result, now: datetime) -> None:
    health = s.get(ChannelHealth, channel, with_for_update=True)
    if health is None:
        health = ChannelHealth(channel=channel, consecutive_failures=0)
        s.add(health)
    if result.ok:
        if health.failing_since is not None:
            log.warning(
                "channel.recovered",
                channel=channel,
                failing_seconds=round((now - health.failing_since).total_seconds(), 1),
            )
            _bring_forward(s, channel, now)
        health.failing_since, health.consecutive_failures = None, 0
        health.last_success_at = now
    else:
        if health.failing_since is None:
            health.failing_since = now
            log.warning("channel.failing", channel=channel, error=result.error)
        health.consecutive_failures = (health.consecutive_failures or 0) + 1
        health.last_failure_at, health.last_error = now, result.error


def _bring_forward(s: Session, channel: str, now: datetime) -> None:
    """The channel is back: every page waiting out a back-off on it is due now."""
    s.execute(
        update(Notification)
        .where(
            Notification.channel == channel,
            Notification.status == NotificationStatus.pending,
            Notification.next_attempt_at > now,
        )
        .values(next_attempt_at=now)
        .execution_options(synchronize_session=False)
    )


def channel_health(db: Database) -> dict[str, ChannelHealth]:
    with db.session() as s:
        rows = s.scalars(select(ChannelHealth)).all()
        s.expunge_all()
    return {row.channel: row for row in rows}


def _remember_ref(s: Session, ref: str, channel: str, provider_id: str, now: datetime) -> None:
    existing = s.get(MessageRef, ref)
    if existing is None:
        s.add(MessageRef(ref=ref, channel=channel, provider_id=provider_id, updated_at=now))
    else:
        existing.provider_id, existing.updated_at = provider_id, now


def known_refs(db: Database, refs: set[str]) -> dict[str, str]:
    if not refs:
        return {}
    with db.session() as s:
        rows = s.execute(
            select(MessageRef.ref, MessageRef.provider_id).where(MessageRef.ref.in_(refs))
        ).all()
    return {ref: provider_id for ref, provider_id in rows}


def owned_elsewhere(db: Database, provider_ids: Sequence[str], notification_id: int) -> set[str]:
    """Which of ``provider_ids`` another notification already recorded as its own."""
    if not provider_ids:
        return set()
    with db.session() as s:
        return set(
            s.scalars(
                select(Notification.provider_id).where(
                    Notification.provider_id.in_(provider_ids), Notification.id != notification_id
                )
            )
        )


@dataclass(frozen=True)
class Failure:
    """A channel that raised or took too long: counted as a retryable failure."""

    error: str
    ok: bool = False
    retryable: bool = True
    provider_id: str | None = None
    retry_after: float | None = None
    status: str = "error"


def message_of(item: Outgoing) -> Message:
    """The channel's Message for a claimed row, the outbox key as its idempotency key."""
    p = item.payload
    return Message(
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


def via(channel: Channel) -> Send:
    """Adapt a delivery channel to the dispatcher."""

    def send(item: Outgoing) -> Result:
        return channel.send(message_of(item))

    return send


# What the provider has of a page: a list (empty: it never got it), or None: it cannot say.
Find = Callable[[Outgoing], list[Found] | None]


def find_via(channel: Channel) -> Find | None:
    """How to ask ``channel``'s provider whether a page already went out, if it can say."""
    finder = getattr(channel, "find", None)
    if finder is None:
        return None

    def find(item: Outgoing) -> list[Found] | None:
        found = finder(message_of(item), item.provider_id, item.created_at)
        return None if found is None else list(found)

    return find
