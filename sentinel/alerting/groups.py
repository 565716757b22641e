"""From alert transitions to notification groups.

The pipeline reads the alerts table's append-only transitions behind a
persisted cursor, so it sees the sentinel's own alerts and those from
Alertmanager alike, never misses one across a restart, and never runs inside
the evaluation loop. A live alert is routed (first matching route; the last
catches the rest) and joins the live group of its route and grouping labels,
or reopens that group when it resolved moments ago (flapping)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from common.logs import get_logger
from sentinel.alerting.config import AlertingConfig, Route
from sentinel.alerting.matchers import matches_all
from sentinel.alerting.models import AlertGroup, Cursor, GroupState
from sentinel.alerting.receiver import SOURCE as ALERTMANAGER
from sentinel.catalogue.models import Severity
from sentinel.models import Alert, AlertState, AlertTransition

log = get_logger(__name__)

LIVE_STATES = (AlertState.firing, AlertState.no_data)  # pending does not page yet
CURSOR = "alert-transitions"


def route_for(config: AlertingConfig, labels: Mapping[str, str]) -> Route:
    return next((r for r in config.routes if matches_all(r.matchers, labels)), config.routes[-1])


def group_key(route: Route, labels: Mapping[str, str]) -> tuple[str, dict[str, str]]:
    grouping = {name: labels.get(name, "") for name in route.group_by}
    raw = json.dumps([route.name, sorted(grouping.items())], separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()[:32], grouping


_RANK = {severity.value: i for i, severity in enumerate(Severity)}  # P0 first


def higher_severity(a: str, b: str) -> str:
    return a if _RANK.get(a, len(_RANK)) <= _RANK.get(b, len(_RANK)) else b


def read_cursor(session: Session, name: str = CURSOR) -> int:
    row = session.get(Cursor, name)
    return row.position if row else 0


def write_cursor(session: Session, position: int, name: str = CURSOR) -> None:
    row = session.get(Cursor, name)
    if row is None:
        session.add(Cursor(name=name, position=position))
    else:
        row.position = position


def ingest(session: Session, config: AlertingConfig, now: datetime, limit: int = 5000) -> int:
    """Attach the alerts of new transitions to groups; returns how many were read.
    Runs in the caller's transaction together with the cursor, so a crash
    replays the same transitions (attaching is idempotent)."""
    start = read_cursor(session)
    rows = session.execute(
        select(AlertTransition.id, AlertTransition.alert_id)
        .where(AlertTransition.id > start)
        .order_by(AlertTransition.id)
        .limit(limit)
    ).all()
    if not rows:
        return 0
    alert_ids = {alert_id for _, alert_id in rows}
    alerts = session.scalars(select(Alert).where(Alert.id.in_(alert_ids))).all()
    live_groups: dict[str, AlertGroup] = {}
    calmed = False
    for alert in alerts:
        if alert.state in LIVE_STATES:
            _attach(session, config, alert, now, live_groups)
        else:
            calmed = True
    if calmed:
        # Its own group may be done, and any group it inhibited may page now.
        session.execute(
            update(AlertGroup)
            .where(AlertGroup.state != GroupState.resolved)
            .values(notify_at=now)
            .execution_options(synchronize_session=False)
        )
    write_cursor(session, rows[-1][0])
    return len(rows)


def _attach(
    session: Session,
    config: AlertingConfig,
    alert: Alert,
    now: datetime,
    cache: dict[str, AlertGroup],
) -> None:
    current = session.get(AlertGroup, alert.group_id) if alert.group_id else None
    if current is not None and current.state is not GroupState.resolved:
        return  # already in its live group
    route = route_for(config, alert.labels)
    key, grouping = group_key(route, alert.labels)
    group = cache.get(key) or _live_group(session, key) or _reopen(session, config, key, now)
    if group is None:
        # group_wait runs from when the alert fired, not from when we noticed.
        opened = min(now, alert.firing_at or now)
        group = AlertGroup(
            key=key,
            route=route.name,
            policy=route.policy,
            labels=grouping,
            severity=alert.severity,
            state=GroupState.open,
            opened_at=opened,
            updated_at=now,
            notify_at=opened + timedelta(seconds=group_wait_seconds(route, [alert])),
        )
        session.add(group)
        session.flush()
        log.info("alert_group.opened", group_id=group.id, route=route.name, labels=grouping)
    cache[key] = group
    group.severity = higher_severity(group.severity, alert.severity)
    group.updated_at = now
    if group.step >= 0:
        group.notify_at = now  # already paged: re-check now (updates keep their interval)
    alert.group_id = group.id


def group_wait_seconds(route: Route, alerts: Sequence[Alert]) -> float:
    """Alertmanager grouped and waited for its alerts already: a group of them only
    waits again when its route asks (``alertmanager_group_wait``)."""
    from_alertmanager = bool(alerts) and all(a.source == ALERTMANAGER for a in alerts)
    if from_alertmanager and not route.alertmanager_group_wait:
        return 0.0
    return route.group_wait_seconds


def repage_still_firing(session: Session, config: AlertingConfig, now: datetime) -> int:
    """Groups a person resolved while their alerts kept firing open again after
    ``repage_resolved_minutes`` and page from the first step, saying so."""
    if config.repage_resolved_minutes <= 0:
        return 0
    cutoff = now - timedelta(minutes=config.repage_resolved_minutes)
    still_firing = (
        select(Alert.id)
        .where(Alert.group_id == AlertGroup.id, Alert.state.in_(LIVE_STATES))
        .exists()
    )
    groups = session.scalars(
        select(AlertGroup).where(
            AlertGroup.state == GroupState.resolved,
            AlertGroup.hand_resolved_at.is_not(None),
            AlertGroup.hand_resolved_at <= cutoff,
            still_firing,
        )
    ).all()
    for group in groups:
        group.state, group.resolved_at = GroupState.open, None
        group.step, group.repeat, group.next_escalation_at = -1, 0, None
        group.acked_at = group.acked_by = None
        group.reopened += 1
        group.notify_at = now
        group.updated_at = now
        log.warning(
            "alert_group.still_firing",
            group_id=group.id,
            resolved_by_hand_at=group.hand_resolved_at.isoformat(),
        )
    return len(groups)


def _live_group(session: Session, key: str) -> AlertGroup | None:
    return session.scalar(
        select(AlertGroup).where(AlertGroup.key == key, AlertGroup.state != GroupState.resolved)
    )


def _reopen(session: Session, config: AlertingConfig, key: str, now: datetime) -> AlertGroup | None:
    """A group that resolved within ``flap_minutes`` comes back as it was: an
    acknowledged one stays acknowledged, an unacknowledged one resumes its
    escalation where it stood instead of paging from the start."""
    if config.flap_minutes <= 0:
        return None
    since = now - timedelta(minutes=config.flap_minutes)
    group = session.scalar(
        select(AlertGroup)
        .where(AlertGroup.key == key, AlertGroup.resolved_at >= since)
        .order_by(AlertGroup.resolved_at.desc())
        .limit(1)
    )
    if group is None:
        return None
    group.state = GroupState.acknowledged if group.acked_at else GroupState.open
    group.resolved_at = None
    group.reopened += 1
    group.escalation_paused_at = group.hand_resolved_at = None
    if group.state is GroupState.open and group.step >= 0:
        policy = config.policies[group.policy]
        wait = policy.steps[min(group.step, len(policy.steps) - 1)].wait_minutes
        group.next_escalation_at = now + timedelta(minutes=wait)
    log.warning("alert_group.reopened", group_id=group.id, reopened=group.reopened)
    return group


def members(session: Session, group_id: int) -> list[Alert]:
    return list(
        session.scalars(select(Alert).where(Alert.group_id == group_id).order_by(Alert.id)).all()
    )
