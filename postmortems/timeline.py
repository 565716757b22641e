"""An incident's timeline drafted from what the platform recorded, for the incident lead
to correct and complete (issue 6 §3):

* the sentinel's alerts of the service in the window (and any linked by id), each
  transition with its value and expected band: "alert payments.failed{method=wallet}
  firing: 6 payments, expected 0–1";
* the notifications about them, every delivery attempt and provider callback:
  "SMS to alice (+7…) sent";
* what people did to the alerts' groups: acknowledgements, resolutions, silences;
* the release gate's releases and rollbacks around the window:
  "release translator 1.4.2 by alice (promoted)", with the suspects flagged.

Reads only: the sentinel's tables through its models, the gate's releases through
``release_gate.history.releases_between`` (contract 4)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from pydantic import BaseModel
from sqlalchemy import or_, select

from common.clock import ensure_utc
from common.logs import get_logger
from sentinel.alerting.models import AuditEvent
from sentinel.catalogue.models import Catalogue
from sentinel.db import Database
from sentinel.history import parse_series_key
from sentinel.models import Alert, AlertTransition, DeliveryAttempt, Notification

log = get_logger(__name__)

SUSPECT_WINDOW = timedelta(hours=2)
# A release in flight this long before the window still counts (a slow canary).
RELEASE_LOOKBACK = timedelta(days=1)
ACTIONS = ("acknowledge", "resolve", "silence")  # audit kinds that are people acting


class DraftEntry(BaseModel):
    at: datetime
    kind: str  # alert | notification | action | release | rollback
    text: str
    ref: str | None  # "alert:12", "notification:40", "audit:7", "release:42"
    suspect: bool = False

    def line(self, time_zone: str = "UTC") -> str:
        """'14:02 alert payments.failed{method=wallet} firing: 6 payments, expected 0–1'."""
        return f"{self.at.astimezone(ZoneInfo(time_zone)):%H:%M} {self.text}"


class ReleaseLike(Protocol):
    """The fields of ``release_gate.history.ReleaseSummary`` the timeline reads."""

    id: int
    service: str
    version: str
    previous_version: str | None
    author: str
    status: str
    decision: str | None
    started_at: datetime
    finished_at: datetime | None
    rolled_back_at: datetime | None
    override_reason: str | None


ReleasesBetween = Callable[[datetime, datetime, str | None], Sequence[ReleaseLike]]


def draft_timeline(
    sentinel_db: Database,
    gate_db: Any,
    *,
    service: str | None,
    start: datetime,
    end: datetime,
    alert_ids: Sequence[int] = (),
    incident_started_at: datetime | None = None,
    suspect_window: timedelta = SUSPECT_WINDOW,
    catalogue: Catalogue | None = None,
) -> list[DraftEntry]:
    """The drafted entries, oldest first. ``service`` None takes every service's
    alerts and releases. ``gate_db`` is the release gate's ``Database``, or any object
    with ``releases_between(start, end, service)``, or None (no releases). The suspect
    releases are judged against ``incident_started_at`` (see ``suspect_releases``);
    without it, against the first anomalous sample of the linked alerts, or ``start``
    when none is linked (a window opened early for context then shifts the rule: pass
    the incident's start). ``catalogue`` gives the units of values (default: the
    sentinel's configured catalogue, if it loads)."""
    start, end = ensure_utc(start), ensure_utc(end)
    if end < start:
        raise ValueError(f"the window ends ({end.isoformat()}) before it starts")
    units = _units(catalogue)
    entries, first_sample = _alert_entries(sentinel_db, service, start, end, list(alert_ids), units)
    if incident_started_at is not None:
        incident_start = ensure_utc(incident_started_at)
    else:
        incident_start = first_sample or start
    releases = _releases(gate_db, min(start, incident_start - suspect_window), end, service)
    entries += release_entries(releases, incident_start, service, suspect_window)
    entries.sort(key=lambda e: (e.at, _KIND_ORDER.get(e.kind, 9), e.ref or "", e.text))
    log.info(
        "postmortem.timeline_drafted",
        service=service,
        entries=len(entries),
        suspects=sum(e.suspect for e in entries),
    )
    return entries


_KIND_ORDER = {"release": 0, "rollback": 1, "alert": 2, "notification": 3, "action": 4}


# --- alerts, notifications, actions ---------------------------------------------------


def _alert_entries(
    db: Database,
    service: str | None,
    start: datetime,
    end: datetime,
    linked: list[int],
    units: dict[str, str],
) -> tuple[list[DraftEntry], datetime | None]:
    """The entries, and the first anomalous sample of the linked alerts."""
    with db.session() as s:
        overlapping = s.scalars(
            select(Alert).where(
                Alert.started_at <= end,
                or_(Alert.resolved_at.is_(None), Alert.resolved_at >= start),
            )
        ).all()
        alerts = {
            a.id: a for a in overlapping if service is None or a.labels.get("service") == service
        }
        if linked:
            alerts.update({a.id: a for a in s.scalars(select(Alert).where(Alert.id.in_(linked)))})
        if not alerts:
            return [], None
        ids = sorted(alerts)
        transitions = s.scalars(
            select(AlertTransition)
            .where(AlertTransition.alert_id.in_(ids))
            .order_by(AlertTransition.alert_id, AlertTransition.id)
        ).all()
        group_ids = sorted({a.group_id for a in alerts.values() if a.group_id is not None})
        notifications = _notifications(s, ids, group_ids)
        attempts = s.scalars(
            select(DeliveryAttempt)
            .where(DeliveryAttempt.notification_id.in_([n.id for n in notifications]))
            .order_by(DeliveryAttempt.id)
        ).all()
        actions = _actions(s, ids, group_ids)

    # (the alert an entry belongs to, the entry): a linked alert keeps all of its own
    entries: list[tuple[int | None, DraftEntry]] = []
    first_seen: set[int] = set()
    for tr in transitions:
        alert = alerts[tr.alert_id]
        at = tr.at
        if tr.alert_id not in first_seen:
            first_seen.add(tr.alert_id)
            at = min(at, alert.started_at)  # the first anomalous sample
        text = _transition_text(alert, tr, units.get(alert.signal, ""))
        entries.append(
            (alert.id, DraftEntry(at=at, kind="alert", text=text, ref=f"alert:{alert.id}"))
        )
    by_notification: dict[int, list[DeliveryAttempt]] = {}
    for attempt in attempts:
        by_notification.setdefault(attempt.notification_id, []).append(attempt)
    for n in notifications:
        entries += [
            (n.alert_id, e) for e in _notification_entries(n, by_notification.get(n.id, []))
        ]
    entries += [(None, e) for e in actions]
    kept = [e for alert_id, e in entries if start <= e.at <= end or alert_id in linked]
    starts = [alerts[i].started_at for i in linked if i in alerts]
    return kept, min(starts) if starts else None


def _notifications(s: Any, alert_ids: list[int], group_ids: list[int]) -> list[Notification]:
    condition = Notification.alert_id.in_(alert_ids)
    if group_ids:  # a group's pages carry the group, not each alert
        condition = or_(condition, Notification.group_id.in_(group_ids))
    return list(s.scalars(select(Notification).where(condition).order_by(Notification.id)))


def _actions(s: Any, alert_ids: list[int], group_ids: list[int]) -> list[DraftEntry]:
    """Acknowledgements, resolutions and silences from the alerting audit trail (refused
    requests are audited there too, and left out)."""
    condition = AuditEvent.alert_id.in_(alert_ids)
    if group_ids:
        condition = or_(condition, AuditEvent.group_id.in_(group_ids))
    rows = s.scalars(
        select(AuditEvent)
        .where(condition, AuditEvent.kind.in_(ACTIONS))
        .order_by(AuditEvent.at, AuditEvent.id)
    ).all()
    verbs = {"acknowledge": "acknowledged", "resolve": "resolved", "silence": "silenced"}
    out = []
    for row in rows:
        what = f"alert group {row.group_id}" if row.group_id is not None else "the alert"
        if row.alert_id is not None and row.group_id is None:
            what = f"alert {row.alert_id}"
        who = row.actor or "someone"
        out.append(
            DraftEntry(
                at=row.at,
                kind="action",
                text=f"{who} {verbs[row.kind]} {what} via {row.via}",
                ref=f"audit:{row.id}",
            )
        )
    return out


def _series_name(alert: Alert) -> str:
    labels = parse_series_key(alert.series) if alert.series else {}
    inner = ",".join(f"{k}={v}" for k, v in labels.items())
    return f"{alert.signal}{{{inner}}}" if inner else alert.signal


def _transition_text(alert: Alert, tr: AlertTransition, unit: str) -> str:
    head = f"alert {_series_name(alert)}"
    state = tr.to_state
    if state == "cancelled":
        return f"{head} recovered before it fired"
    if state == "no_data":
        return f"{head} no data"
    label = state.replace("_", " ")
    if tr.value is None:
        if state == "resolved":
            return f"{head} resolved"
        summary = " ".join((alert.summary or "").split())
        return f"{head} {label}" + (f": {_clip(summary)}" if summary else "")
    evidence = tr.evidence or {}
    shown_unit = f" {unit}" if unit and unit != "ratio" else ""
    text = f"{head} {label}: {_number(tr.value)}{shown_unit}"
    if state != "resolved":
        text += _band(evidence.get("lower"), evidence.get("upper"))
    return text


def _band(lower: float | None, upper: float | None) -> str:
    if lower is not None and upper is not None:
        return f", expected {_number(lower)}–{_number(upper)}"
    if upper is not None:
        return f", expected ≤ {_number(upper)}"
    if lower is not None:
        return f", expected ≥ {_number(lower)}"
    return ""


def _number(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"


def _clip(text: str, limit: int = 140) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


CHANNELS = {
    "twilio_sms": "SMS",
    "twilio_voice": "call",
    "slack": "Slack message",
    "webhook": "webhook",
    "console": "console notice",
}


def _notification_entries(n: Notification, attempts: list[DeliveryAttempt]) -> list[DraftEntry]:
    channel = CHANNELS.get(n.channel, n.channel)
    person = getattr(n, "person", None)
    to = f"{person} ({n.recipient})" if person and person != n.recipient else n.recipient
    head = f"{channel} to {to}"
    if not attempts:
        status = n.status.value if hasattr(n.status, "value") else str(n.status)
        return [
            DraftEntry(
                at=n.created_at,
                kind="notification",
                text=f"{head} {status}",
                ref=f"notification:{n.id}",
            )
        ]
    out = []
    for a in attempts:
        outcome = a.status if a.ok else f"{a.status}: {a.error}" if a.error else a.status
        if getattr(a, "source", "send") == "callback":
            outcome = f"reported {outcome}"
        out.append(
            DraftEntry(
                at=a.at,
                kind="notification",
                text=f"{head} {outcome}",
                ref=f"notification:{n.id}/{a.id}",
            )
        )
    return out


def _units(catalogue: Catalogue | None) -> dict[str, str]:
    if catalogue is None:
        try:
            from sentinel.catalogue.loader import load_catalogue
            from sentinel.settings import SentinelSettings

            catalogue = load_catalogue(SentinelSettings().catalogue)
        except Exception as exc:  # units are a nicety: draft without them
            log.warning("postmortem.timeline_no_catalogue", error=str(exc))
            return {}
    return {s.name: s.unit for s in catalogue.signals}


# --- releases ---------------------------------------------------------------------------


def _releases(
    gate_db: Any, since: datetime, end: datetime, service: str | None
) -> list[ReleaseLike]:
    """Releases of every service touching [since, end]. Every service, so a release of
    a neighbour shows (unflagged) too."""
    if gate_db is None:
        return []
    fetch: ReleasesBetween
    if hasattr(gate_db, "releases_between"):
        fetch = gate_db.releases_between
    else:
        try:
            from release_gate.history import releases_between
        except ImportError:
            log.warning("postmortem.timeline_no_release_gate")
            return []

        def fetch(a: datetime, b: datetime, svc: str | None) -> Sequence[ReleaseLike]:
            return releases_between(gate_db, a, b, svc)

    found = fetch(since - RELEASE_LOOKBACK, end + timedelta(microseconds=1), None)
    return [
        r
        for r in found
        if r.status != "refused"  # a refusal deployed nothing
        and ensure_utc(r.started_at) <= end
        and ensure_utc(_last_moment(r) or end) >= since
    ]


def _last_moment(r: ReleaseLike) -> datetime | None:
    moments = [m for m in (r.finished_at, r.rolled_back_at) if m is not None]
    return max(moments) if moments else None


def suspect_releases(
    releases: Iterable[ReleaseLike],
    incident_started_at: datetime,
    service: str | None,
    window: timedelta = SUSPECT_WINDOW,
) -> list[ReleaseLike]:
    """The releases that may have caused the incident, most suspect first.

    The rule: a release of the incident's service (any service when it is None) that
    started before the incident did and was still rolling out, or finished, no more
    than ``window`` before it: finished_at >= incident start - window, or not finished
    at all. The one that finished last (a release in flight counts as finishing at the
    incident's start) is the most suspect. Refused releases deployed nothing and never
    are."""
    start = ensure_utc(incident_started_at)
    candidates = []
    for r in releases:
        if r.status == "refused" or (service is not None and r.service != service):
            continue
        if ensure_utc(r.started_at) > start:
            continue
        finished = ensure_utc(r.finished_at) if r.finished_at else None
        if finished is None or finished >= start - window:
            candidates.append(r)
    return sorted(
        candidates,
        key=lambda r: min(ensure_utc(r.finished_at), start) if r.finished_at else start,
        reverse=True,
    )


def release_entries(
    releases: Sequence[ReleaseLike],
    incident_started_at: datetime,
    service: str | None,
    window: timedelta = SUSPECT_WINDOW,
) -> list[DraftEntry]:
    """One entry per release (when it finished, or started while still in flight) and
    one per rollback; suspects flagged, the most suspect said so."""
    start = ensure_utc(incident_started_at)
    suspects = suspect_releases(releases, start, service, window)
    rank = {r.id: i for i, r in enumerate(suspects)}
    entries = []
    for r in releases:
        at = ensure_utc(r.finished_at or r.started_at)
        outcome = r.status.replace("_", " ")
        details = [outcome]
        if r.finished_at:
            details.append(f"started {ensure_utc(r.started_at):%H:%M}")
        if r.previous_version:
            details.append(f"from {r.previous_version}")
        if r.override_reason:
            details.append(f"override: {r.override_reason}")
        text = f"release {r.service} {r.version} by {r.author} ({'; '.join(details)})"
        if r.id in rank:
            text += " — " + _suspicion(r, start, rank[r.id] == 0)
        entries.append(
            DraftEntry(
                at=at, kind="release", text=text, ref=f"release:{r.id}", suspect=r.id in rank
            )
        )
        if r.rolled_back_at is not None:
            back_to = f" to {r.previous_version}" if r.previous_version else ""
            entries.append(
                DraftEntry(
                    at=ensure_utc(r.rolled_back_at),
                    kind="rollback",
                    text=f"rollback of {r.service} {r.version}{back_to}",
                    ref=f"release:{r.id}",
                )
            )
    return entries


def _suspicion(r: ReleaseLike, incident_start: datetime, most: bool) -> str:
    label = "most suspect" if most else "suspect"
    if r.finished_at is None:
        return f"{label}: still rolling out when the incident started"
    gap = incident_start - ensure_utc(r.finished_at)
    if gap < timedelta(0):
        return f"{label}: rolling out when the incident started"
    minutes = round(gap.total_seconds() / 60)
    return f"{label}: finished {minutes} min before the incident started"
