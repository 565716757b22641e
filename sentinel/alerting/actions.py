"""What people do to alerts, from any door (API, CLI, Slack button, phone
keypad): acknowledge, resolve, silence. Each action is audited with who and
through what; acknowledging stops the escalation."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy.orm import Session

from common.bounds import MAX_SILENCE
from common.logs import get_logger
from sentinel.alerting.matchers import Matcher, parse_matchers
from sentinel.alerting.models import AlertGroup, AuditEvent, GroupState
from sentinel.alerting.models import Silence as SilenceRow
from sentinel.alerting.silences import Silence
from sentinel.models import Alert

log = get_logger(__name__)

Action = Literal["acknowledge", "resolve", "silence"]


class ActionError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def audit(
    s: Session,
    kind: str,
    via: str,
    now: datetime,
    actor: str | None = None,
    group_id: int | None = None,
    alert_id: int | None = None,
    **detail: Any,
) -> None:
    s.add(
        AuditEvent(
            at=now,
            kind=kind,
            actor=actor,
            via=via,
            group_id=group_id,
            alert_id=alert_id,
            detail=detail,
        )
    )


def group_of_alert(s: Session, alert_id: int) -> int:
    alert = s.get(Alert, alert_id)
    if alert is None:
        raise ActionError(404, f"no alert {alert_id}")
    if alert.group_id is None:
        raise ActionError(409, f"alert {alert_id} has not been routed to a group yet")
    return alert.group_id


def act(
    s: Session,
    action: Action,
    group_id: int,
    by: str,
    via: str,
    now: datetime,
    silence_minutes: float = 30,
) -> AlertGroup:
    group = s.get(AlertGroup, group_id, with_for_update=True)
    if group is None:
        raise ActionError(404, f"no alert group {group_id}")
    if action == "acknowledge":
        _acknowledge(group, by, now)
    elif action == "resolve":
        _resolve(group, now)
    else:
        silence_group(s, group, by, via, now, silence_minutes)
    audit(s, action, via, now, actor=by, group_id=group.id)
    log.warning("alert_group.action", action=action, group_id=group.id, by=by, via=via)
    return group


def _acknowledge(group: AlertGroup, by: str, now: datetime) -> None:
    if group.state is GroupState.resolved:
        raise ActionError(409, f"alert group {group.id} is already resolved")
    if group.state is GroupState.acknowledged:
        return  # a second press changes nothing
    group.state, group.acked_by, group.acked_at = GroupState.acknowledged, by, now
    group.next_escalation_at = None
    group.escalation_paused_at = None
    group.notify_at = now  # the shared message shows who owns it at once


def _resolve(group: AlertGroup, now: datetime) -> None:
    """Closes the page. Alerts that still fire stay visible in /api/alerts, and
    page again, as still firing, after ``repage_resolved_minutes``."""
    if group.state is GroupState.resolved:
        return
    group.state, group.resolved_at = GroupState.resolved, now
    group.hand_resolved_at = now
    group.next_escalation_at = None
    group.notify_at = now  # the next pipeline pass sends the resolution notices


def silence_group(
    s: Session, group: AlertGroup, by: str, via: str, now: datetime, minutes: float
) -> SilenceRow:
    labels = {k: v for k, v in group.labels.items() if v}
    if not labels:
        raise ActionError(409, f"alert group {group.id} has no labels to silence by")
    group.notify_at = now
    return add_silence(
        s,
        matchers=[str(m) for m in parse_matchers(labels)],
        starts_at=now,
        ends_at=now + timedelta(minutes=minutes),
        created_by=by,
        comment=f"silenced for {minutes:g} minutes from {via} (group {group.id})",
        now=now,
        via=via,
    )


def add_silence(
    s: Session,
    matchers: list[str] | list[Matcher],
    starts_at: datetime,
    ends_at: datetime,
    created_by: str,
    comment: str,
    now: datetime,
    via: str = "api",
) -> SilenceRow:
    """Validated like any silence: matchers parse, the end follows the start, a comment."""
    try:
        model = Silence(
            matchers=matchers,
            starts_at=starts_at,
            ends_at=ends_at,
            created_by=created_by,
            comment=comment,
        )
    except ValueError as exc:
        raise ActionError(422, str(exc)) from exc
    if model.ends_at - model.starts_at > MAX_SILENCE:
        raise ActionError(
            422, f"a silence lasts at most {MAX_SILENCE.days // 7} weeks; use a maintenance window"
        )
    row = SilenceRow(
        matchers=[str(m) for m in model.matchers],
        starts_at=model.starts_at,
        ends_at=model.ends_at,
        created_by=created_by,
        comment=comment,
        created_at=now,
    )
    s.add(row)
    s.flush()
    audit(
        s, "silence.created", via, now, actor=created_by, silence_id=row.id, matchers=row.matchers
    )
    return row


def expire_silence(s: Session, silence_id: int, by: str, via: str, now: datetime) -> SilenceRow:
    row = s.get(SilenceRow, silence_id)
    if row is None:
        raise ActionError(404, f"no silence {silence_id}")
    if row.ends_at > now:
        row.ends_at = max(now, row.starts_at)
    audit(s, "silence.expired", via, now, actor=by, silence_id=row.id)
    return row
