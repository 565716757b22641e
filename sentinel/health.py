"""What /api/health and /metrics say about a sentinel: its database, its
evaluation loop (the last successful cycle), its dispatcher (the oldest page
due and not sent, and channels that are failing). Any of them wrong makes the
sentinel ``degraded`` (503) with the reason, so a load balancer, a supervisor
or a person sees a sentinel that cannot page, not just a process that is up."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, text

from sentinel.alerting.models import ChannelHealth
from sentinel.models import Notification, NotificationStatus
from sentinel.service import Sentinel

DATABASE_TIMEOUT_SECONDS = 3.0
# One failure is a blip; this many in a row (or a minute of them) is a failing channel.
FAILING_AFTER = 3
FAILING_AFTER_SECONDS = 60.0

_probe_pool = ThreadPoolExecutor(2, "health")


@dataclass
class Health:
    reasons: list[str] = field(default_factory=list)
    checks: dict[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> str:
        return "degraded" if self.reasons else "healthy"


@dataclass(frozen=True)
class ChannelState:
    channel: str
    failing: bool
    failing_since: datetime | None
    consecutive_failures: int
    last_error: str | None
    last_success_at: datetime | None


@dataclass(frozen=True)
class Backlog:
    due: int  # pages due now and not sent
    oldest_due_seconds: float | None
    waiting: int  # pages not sent yet, due or backing off
    oldest_waiting_seconds: float | None


def check(sentinel: Sentinel, loops_started_at: datetime | None) -> Health:
    """``loops_started_at``: when this process started its evaluation and
    delivery loops (None: it runs none, so only the database is judged)."""
    settings = sentinel.settings
    now = sentinel.clock.now()
    health = Health()
    try:
        _probe_pool.submit(_ping, sentinel).result(timeout=DATABASE_TIMEOUT_SECONDS)
        health.checks["database"] = {"status": "ok"}
    except FutureTimeout:
        return _database_down(health, f"no answer within {DATABASE_TIMEOUT_SECONDS:g} s")
    except Exception as exc:
        return _database_down(health, f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}")

    if loops_started_at is not None:
        last = sentinel.last_cycle_ok_at
        age = (now - (last or loops_started_at)).total_seconds()
        evaluation: dict[str, Any] = {
            "last_success_at": last,
            "failures_in_a_row": sentinel.cycle_failures,
            "last_error": sentinel.last_cycle_error,
        }
        if age > settings.health_cycle_stale_seconds:
            evaluation["status"] = "stale"
            error = f" ({sentinel.cycle_failures} failed in a row: {sentinel.last_cycle_error})"
            health.reasons.append(
                f"evaluation: no successful cycle for {age:.0f} s"
                + (error if sentinel.cycle_failures else "")
            )
        else:
            evaluation["status"] = "ok"
        health.checks["evaluation"] = evaluation

        dispatcher = sentinel.dispatcher
        since = dispatcher.last_ok_at or loops_started_at
        pass_age = (now - since).total_seconds()
        delivery: dict[str, Any] = {"last_pass_at": dispatcher.last_ok_at}
        if pass_age > settings.health_cycle_stale_seconds:
            health.reasons.append(
                f"dispatcher: no pass reached the database for {pass_age:.0f} s"
                + (f" ({dispatcher.last_error})" if dispatcher.last_error else "")
            )
        health.checks["dispatcher"] = delivery
    else:
        delivery = {}
        health.checks["dispatcher"] = delivery

    backlog = backlog_of(sentinel, now)
    delivery.update(
        pages_due=backlog.due,
        oldest_due_seconds=backlog.oldest_due_seconds,
        pages_waiting=backlog.waiting,
        oldest_waiting_seconds=backlog.oldest_waiting_seconds,
    )
    if (backlog.oldest_due_seconds or 0) > settings.health_page_delay_seconds:
        health.reasons.append(
            f"delivery: {backlog.due} page(s) due and not sent, the oldest for "
            f"{backlog.oldest_due_seconds:.0f} s"
        )
    channels = channel_states(sentinel, now)
    health.checks["channels"] = {
        c.channel: {
            "status": "failing" if c.failing else "ok",
            "failing_since": c.failing_since,
            "consecutive_failures": c.consecutive_failures,
            "last_error": c.last_error,
            "last_success_at": c.last_success_at,
        }
        for c in channels
    }
    for c in channels:
        if c.failing:
            assert c.failing_since is not None
            seconds = (now - c.failing_since).total_seconds()
            health.reasons.append(
                f"channel {c.channel}: failing for {seconds:.0f} s "
                f"({c.consecutive_failures} failures in a row: {c.last_error})"
            )
    return health


def _ping(sentinel: Sentinel) -> None:
    with sentinel.db.engine.connect() as conn:
        conn.execute(text("SELECT 1"))


def _database_down(health: Health, why: str) -> Health:
    health.checks["database"] = {"status": "unreachable", "error": why}
    health.reasons.append(f"database: {why}")
    return health


def channel_states(sentinel: Sentinel, now: datetime) -> list[ChannelState]:
    with sentinel.db.session() as s:
        rows = s.scalars(select(ChannelHealth).order_by(ChannelHealth.channel)).all()
        return [
            ChannelState(
                channel=r.channel,
                failing=r.failing_since is not None
                and (
                    r.consecutive_failures >= FAILING_AFTER
                    or (now - r.failing_since).total_seconds() >= FAILING_AFTER_SECONDS
                ),
                failing_since=r.failing_since,
                consecutive_failures=r.consecutive_failures,
                last_error=(r.last_error or "")[:200] or None,
                last_success_at=r.last_success_at,
            )
            for r in rows
        ]


def backlog_of(sentinel: Sentinel, now: datetime) -> Backlog:
    waiting = Notification.status.in_((NotificationStatus.pending, NotificationStatus.sending))
    due = or_(
        and_(
            Notification.status == NotificationStatus.pending,
            Notification.next_attempt_at <= now,
        ),
        and_(Notification.status == NotificationStatus.sending, Notification.lease_until <= now),
    )
    became_due = func.min(
        # A claim whose lease ran out has been due since then; a pending page since its time.
        Notification.next_attempt_at
    )
    with sentinel.db.session() as s:
        due_count, oldest_due = s.execute(select(func.count(), became_due).where(due)).one()
        waiting_count, oldest_waiting = s.execute(
            select(func.count(), func.min(Notification.created_at)).where(waiting)
        ).one()

    def age(t: datetime | None) -> float | None:
        if t is None:
            return None
        if t.tzinfo is None:  # SQLite aggregates come back naive (UTC)
            t = t.replace(tzinfo=now.tzinfo)
        return max((now - t).total_seconds(), 0.0)

    return Backlog(int(due_count), age(oldest_due), int(waiting_count), age(oldest_waiting))
