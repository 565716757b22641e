"""One run of the alerting pipeline: read new alert transitions into groups,
pass every due group through the stages, and send held notifications out
as bundles once their recipient's rate limit allows."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from common.clock import Clock
from common.logs import get_logger
from sentinel.alerting import messages
from sentinel.alerting.config import AlertingConfig
from sentinel.alerting.groups import ingest, members, repage_still_firing, route_for
from sentinel.alerting.matchers import parse_matchers
from sentinel.alerting.models import AlertGroup, GroupState
from sentinel.alerting.models import Silence as SilenceRow
from sentinel.alerting.outbox import enqueue
from sentinel.alerting.pipeline import GroupPass, Tick, build_pipeline, recent_count, run_pipeline
from sentinel.alerting.silences import Silence
from sentinel.db import Database
from sentinel.models import ACTIVE_STATES, Alert, AlertState, Notification, NotificationStatus
from sentinel.source_health import SOURCE_SIGNAL

log = get_logger(__name__)

RECHECK = timedelta(seconds=60)  # a live group is looked at again at least this often
SETTLE_LOOKBACK = timedelta(hours=1)  # longer than any source warm-up


@dataclass(frozen=True)
class RunStats:
    transitions: int
    groups: int
    notifications: int
    bundles: int


class Notifier:
    def __init__(
        self,
        db: Database,
        config: AlertingConfig,
        clock: Clock,
        public_url: str | None = None,
        on_queued: Callable[[], None] | None = None,
    ) -> None:
        self.db, self.config, self.clock = db, config, clock
        self.public_url = public_url
        # Called once notifications are committed to the outbox (wakes the dispatcher).
        self.on_queued = on_queued
        self.stages = build_pipeline(config)
        self.routes = {r.name: r for r in config.routes}

    def run_once(self) -> RunStats:
        now = self.clock.now()
        with self.db.session() as s:
            transitions = ingest(s, self.config, now)
            repage_still_firing(s, self.config, now)
        due = self._due_groups(now)
        planned = 0
        tick = self._tick(now) if due else None  # firing labels and silences, once per run
        for group_id in due:
            assert tick is not None
            with self.db.session() as s:
                queued = self._pass(s, group_id, tick)
            if queued:
                self._queued()  # after the commit, so the dispatcher can claim them
            planned += queued
        with self.db.session() as s:
            bundles = flush_bundles(s, self.config, now)
        if bundles:
            self._queued()
        return RunStats(transitions, len(due), planned, bundles)

    def _queued(self) -> None:
        if self.on_queued is not None:
            self.on_queued()

    def _tick(self, now: datetime) -> Tick:
        with self.db.session() as s:
            firing = s.scalars(select(Alert.labels).where(Alert.state == AlertState.firing)).all()
            sources_down = unreadable_sources(s, now)
            rows = s.scalars(
                select(SilenceRow).where(SilenceRow.starts_at <= now, SilenceRow.ends_at > now)
            ).all()
        silences = [
            Silence(
                id=str(r.id),
                matchers=parse_matchers(r.matchers),
                starts_at=r.starts_at,
                ends_at=r.ends_at,
                created_by=r.created_by,
                comment=r.comment,
            )
            for r in rows
        ]
        return Tick(
            now=now,
            firing_labels=list(firing),
            silences=silences,
            windows=self.config.maintenance_windows,
            public_url=self.public_url,
            sources_down=sources_down,
        )

    def _due_groups(self, now: datetime) -> list[int]:
        with self.db.session() as s:
            return list(
                s.scalars(
                    select(AlertGroup.id)
                    .where(
                        or_(
                            AlertGroup.notify_at <= now,  # resolved ones: notices still to send
                            and_(
                                AlertGroup.state != GroupState.resolved,
                                AlertGroup.next_escalation_at <= now,
                                AlertGroup.escalation_paused_at.is_(None),  # muted: rechecked
                            ),
                        )
                    )
                    .order_by(AlertGroup.id)
                ).all()
            )

    def _pass(self, s: Session, group_id: int, tick: Tick) -> int:
        # The row lock keeps an acknowledgement from interleaving with the pass.
        group = s.get(AlertGroup, group_id, with_for_update=True)
        if group is None:
            return 0
        route = self.routes.get(group.route) or route_for(self.config, group.labels)
        p = GroupPass(
            session=s,
            tick=tick,
            config=self.config,
            group=group,
            route=route,
            policy=self.config.policies[group.policy],
            alerts=members(s, group_id),
        )
        group.notify_at = tick.now + RECHECK  # stages bring it forward when due sooner
        run_pipeline(self.stages, p)
        if group.state is GroupState.resolved:
            group.notify_at = None
        group.updated_at = tick.now
        return len(p.outgoing)


def unreadable_sources(s: Session, now: datetime) -> frozenset[str]:
    """Sources whose alert is active (pending too: the cause is known while it is
    confirmed), or resolved so recently that their signals are still finding their
    data again (``settles_until``)."""
    rows = s.execute(
        select(Alert.labels, Alert.state, Alert.evidence).where(
            Alert.signal == SOURCE_SIGNAL,
            or_(Alert.state.in_(ACTIVE_STATES), Alert.resolved_at >= now - SETTLE_LOOKBACK),
        )
    ).all()
    down = set()
    for labels, state, evidence in rows:
        settles = (evidence or {}).get("settles_until")
        if state in ACTIVE_STATES or (settles and datetime.fromisoformat(settles) > now):
            down.add((labels or {}).get("source", ""))
    return frozenset(down - {""})


def flush_bundles(s: Session, config: AlertingConfig, now: datetime) -> int:
    """One bundle per recipient whose window has room again, carrying every
    notification held for it."""
    held = s.scalars(
        select(Notification)
        .where(Notification.status == NotificationStatus.held)
        .order_by(Notification.id)
    ).all()
    slots: dict[tuple[str, str], list[Notification]] = {}
    for row in held:
        slots.setdefault((row.channel, row.recipient), []).append(row)
    made = 0
    for (channel, recipient), rows in slots.items():
        limit = config.rate_limits.get(channel)  # type: ignore[call-overload]
        if limit is not None:
            since = now - timedelta(minutes=limit.per_minutes)
            if recent_count(s, channel, recipient, since) >= limit.max:
                continue
        subjects = [r.payload.get("subject") or r.payload["text"][:80] for r in rows]
        key = f"bundle:{channel}:{recipient}:{rows[0].id}"
        first = rows[0]
        enqueue(
            s,
            key,
            channel,
            recipient,
            {
                "subject": f"{len(rows)} more alert notifications",
                "text": messages.bundle_text(subjects),
                "fingerprint": first.payload.get("fingerprint", ""),
                "severity": first.payload.get("severity", ""),
                "state": "firing",
            },
            now,
            person=first.person,
        )
        bundle_id = s.scalar(select(Notification.id).where(Notification.key == key))
        for row in rows:
            row.status = NotificationStatus.bundled
            row.bundled_into = bundle_id
        made += 1
        log.warning("notification.bundled", channel=channel, recipient=recipient, held=len(rows))
    return made
