"""The notification outbox and its dispatcher.

A notification is written as a row in the same transaction that decides it,
and only then sent. The dispatcher claims due rows with a lease (one UPDATE,
``FOR UPDATE SKIP LOCKED`` on PostgreSQL), sends, and records the attempt. A
dispatcher killed mid-send leaves its rows in ``sending``; once the lease runs
out another claims them again: nothing is lost, and a notification is sent at
most one extra time (the notification id travels as an idempotency key)."""

from __future__ import annotations

import secrets
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from common.clock import Clock
from common.logs import get_logger
from sentinel.alerting.channels.base import Channel, Message
from sentinel.alerting.models import MessageRef
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
    *,
    group_id: int | None = None,
    person: str | None = None,
    step: int | None = None,
    held: bool = False,
) -> bool:
    """Add a notification in the caller's transaction; False if ``key`` exists.
    A message that edits an earlier one in place (``payload["ref"]``) makes any
    older unsent edit of it pointless: that one is folded into this."""
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
    ref = payload.get("ref")
    if ref and not held:
        session.execute(
            update(Notification)
            .where(
                Notification.id != row.id,
                Notification.channel == channel,
                Notification.recipient == recipient,
                Notification.status == NotificationStatus.pending,
                Notification.payload["ref"].as_string() == ref,
            )
            .values(status=NotificationStatus.bundled, bundled_into=row.id)
            .execution_options(synchronize_session=False)
        )
    return True


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


OnFailed = Callable[[Session, Notification, datetime], None]


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
) -> list[NotificationStatus | None]:
    """Store a batch of attempts in one transaction. A notification that gives
    up is handed to ``on_failed`` in that same transaction (the fallback to
    another channel is written atomically with the failure)."""
    statuses: list[NotificationStatus | None] = []
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
            statuses.append(_apply(s, row, item, result, now, policy))
            if row.status is NotificationStatus.failed and on_failed is not None:
                on_failed(s, row, now)
            ref = item.payload.get("ref")
            if result.ok and ref and result.provider_id:
                _remember_ref(s, ref, item.channel, result.provider_id, now)
    for (item, result), status in zip(outcomes, statuses, strict=True):
        if status is None:
            continue
        level = log.info if result.ok else log.warning
        level(
            "notification.attempt",
            notification_id=item.id,
            key=item.key,
            channel=item.channel,
            attempt=item.attempt,
            outcome=status.value,
            error=result.error,
        )
    return statuses


def _apply(
    s: Session,
    row: Notification,
    item: Outgoing,
    result: Result,
    now: datetime,
    policy: RetryPolicy,
) -> NotificationStatus:
    s.add(
        DeliveryAttempt(
            notification_id=item.id,
            at=now,
            ok=result.ok,
            status=result.status,
            provider_id=result.provider_id,
            error=result.error,
            source="send",
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
    return row.status


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
    """Claims due notifications and sends them, ``workers`` at a time. Edits of
    one message (same ``ref``) go in order on one worker, each carrying the
    provider id the previous one got back."""

    def __init__(
        self,
        db: Database,
        channels: Mapping[str, Send],
        clock: Clock,
        policy: RetryPolicy | None = None,
        lease: timedelta = timedelta(minutes=2),
        batch: int = 100,
        workers: int = 1,
        on_failed: OnFailed | None = None,
    ) -> None:
        self.db, self.channels, self.clock = db, channels, clock
        self.policy = policy or RetryPolicy()
        self.lease, self.batch = lease, batch
        self.on_failed = on_failed
        self.workers = workers
        self._pool = ThreadPoolExecutor(workers) if workers > 1 else None
        self._wakeup = threading.Event()
        self._stopping = threading.Event()
        self.idle = threading.Event()  # set while ``serve`` waits for work
        self.wakeups = 0  # drains started by ``wake`` rather than by the poll

    def wake(self) -> None:
        """Something was just queued: ``serve`` drains now instead of at its next poll."""
        self._wakeup.set()

    def serve(self, poll_seconds: float) -> None:
        """Drain until ``stop``: at once when woken, else every ``poll_seconds``
        (for pages queued by other processes, and retries falling due)."""
        while not self._stopping.is_set():
            self._wakeup.clear()  # before draining: a page queued meanwhile wakes us again
            try:
                attempted = self.drain()
            except Exception:
                log.exception("notification.drain_failed")
                attempted = 0
            if attempted:
                continue  # a failure may have queued a fallback: look again at once
            self.idle.set()
            woken = self._wakeup.wait(poll_seconds)
            self.idle.clear()
            if woken and not self._stopping.is_set():
                self.wakeups += 1

    def stop(self) -> None:
        self._stopping.set()
        self._wakeup.set()

    def run_once(self) -> int:
        """Send one batch of what is due now; returns how many were attempted."""
        return self.drain(max_items=self.batch)

    def drain(self, max_items: int = 10_000) -> int:
        """Send everything due (up to ``max_items``), keeping every worker busy:
        the next batch is claimed while the last one is still sending, and
        results are recorded as they come back. Returns how many were attempted."""
        in_flight: dict[Future[list[tuple[Outgoing, Result]]], object] = {}
        waiting: dict[str, deque[list[Outgoing]]] = {}  # edits queued behind one in flight
        refs: dict[str, str] = {}
        outcomes: list[tuple[Outgoing, Result]] = []
        total, exhausted = 0, False
        while True:
            if not exhausted and total < max_items and len(in_flight) < 2 * self.workers:
                items = claim(self.db, self.clock.now(), self.lease, self.batch)
                exhausted = not items
                total += len(items)
                new_refs = {i.payload["ref"] for i in items if i.payload.get("ref")} - set(refs)
                refs.update(known_refs(self.db, new_refs))
                for key, lane in _lanes(items).items():
                    if isinstance(key, str) and key in waiting:
                        waiting[key].append(lane)  # after the edit already in flight
                        continue
                    if isinstance(key, str):
                        waiting[key] = deque()
                    in_flight[self._submit(lane, refs)] = key
                if not exhausted and total < max_items:
                    continue
            if not in_flight:
                break
            done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            for future in done:
                key = in_flight.pop(future)
                outcomes.extend(future.result())
                if isinstance(key, str):
                    if waiting[key]:
                        in_flight[self._submit(waiting[key].popleft(), refs)] = key
                    else:
                        del waiting[key]
            if len(outcomes) >= self.batch or not in_flight:
                record_many(self.db, outcomes, self.clock.now(), self.policy, self.on_failed)
                outcomes = []
        return total

    def _submit(
        self, lane: list[Outgoing], refs: dict[str, str]
    ) -> Future[list[tuple[Outgoing, Result]]]:
        if self._pool is not None:
            return self._pool.submit(self._lane, lane, refs)
        done: Future[list[tuple[Outgoing, Result]]] = Future()  # one worker: send right here
        done.set_result(self._lane(lane, refs))
        return done

    def _lane(self, lane: list[Outgoing], refs: dict[str, str]) -> list[tuple[Outgoing, Result]]:
        out: list[tuple[Outgoing, Result]] = []
        for item in lane:
            ref = item.payload.get("ref")
            if ref and ref in refs:
                item = replace(item, payload={**item.payload, "slack_ts": refs[ref]})
            result = self._send(item)
            if ref and result.ok and result.provider_id:
                refs[ref] = result.provider_id
            out.append((item, result))
        return out

    def _send(self, item: Outgoing) -> Result:
        send = self.channels.get(item.channel)
        if send is None:
            return _Failure(f"no channel {item.channel!r}", retryable=False)
        try:
            return send(item)
        except Exception as exc:  # a channel bug must not stop the others
            log.exception("notification.channel_crashed", channel=item.channel)
            return _Failure(f"{type(exc).__name__}: {exc}")

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)


def _lanes(items: list[Outgoing]) -> dict[object, list[Outgoing]]:
    """Edits of one message (same ``ref``) share a lane and go in order."""
    lanes: dict[object, list[Outgoing]] = {}
    for item in items:
        lanes.setdefault(item.payload.get("ref") or item.id, []).append(item)
    return lanes


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
