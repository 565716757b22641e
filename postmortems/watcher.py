"""Opens incidents from critical sentinel alerts: P0/P1 alerts that fired, read
from the sentinel's ``alerts`` table behind a persisted cursor. An alert joins an
open incident of its service only when it belongs to it (``belonging.belongs``),
otherwise it opens its own. Acknowledging the page (the sentinel's alert group)
acknowledges the incidents it is behind (``AckWatcher``).

The sentinel is never called: it records, we read (one direction only). An
alert that fired and resolved between two polls still opens its incident; a
restarted watcher resumes from its cursor, and an alert already linked to an
incident is never taken twice (the link is unique), even with two watchers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from common.clock import ensure_utc
from common.logs import get_logger
from postmortems.models import Incident, IncidentAlert, IncidentStatus, WatcherCursor
from postmortems.schemas import IncidentIn
from postmortems.service import Postmortems
from postmortems.titles import compose_title, series_text

log = get_logger("postmortems.watcher")

CRITICAL_SEVERITIES = ("P0", "P1")
CURSOR = "sentinel-alerts"
# Alerts are read again this far behind the cursor: a transaction that committed
# late with an earlier firing_at is not skipped (links make re-reads harmless).
OVERLAP = timedelta(minutes=10)


class WatchResult(BaseModel):
    alert_id: int  # 0 for a rollback
    incident_id: int
    created: bool
    release_id: int | None = None


@dataclass
class AlertWatcher:
    service: Postmortems
    sentinel_db: Any  # sentinel.db.Database
    default_service: str = "translator"
    first_run_lookback: timedelta = timedelta(hours=24)

    def run_once(self) -> list[WatchResult]:
        from sentinel.models import Alert, AlertState

        now = self.service.clock.now()
        since = self._cursor(now)
        with self.sentinel_db.session() as s:
            alerts = list(
                s.scalars(
                    select(Alert)
                    .where(
                        Alert.severity.in_(CRITICAL_SEVERITIES),
                        Alert.firing_at.is_not(None),
                        Alert.firing_at >= since - OVERLAP,
                        Alert.state != AlertState.cancelled,
                    )
                    .order_by(Alert.firing_at, Alert.id)
                )
            )
            on_call = self._first_paged(s, [a.id for a in alerts])
        linked = self._linked([a.id for a in alerts])
        self._record_pages([a for a in alerts if a.id in linked])
        results: list[WatchResult] = []
        newest = since
        for alert in alerts:
            newest = max(newest, ensure_utc(alert.firing_at))
            if alert.id in linked:
                continue
            result = self._open(alert, on_call.get(alert.id))
            if result is not None:
                results.append(result)
        self._save_cursor(newest, now)
        return results

    def _open(self, alert: Any, on_call: str | None) -> WatchResult | None:
        labels = alert.labels or {}
        service = labels.get("service") or self.default_service
        data = IncidentIn(
            title=compose_title(alert.severity, service, [series_text(alert.signal, labels)]),
            severity=alert.severity,
            service=service,
            started_at=ensure_utc(alert.started_at),
            detected_at=ensure_utc(alert.firing_at),
            on_call=on_call,
            source="watcher",
            source_ref=f"alert:{alert.id}",
            alert_ids=[alert.id],
        )
        try:
            opened = self.service.open(data, actor="watcher", alerts=[alert])
        except IntegrityError:
            # Another watcher linked this alert first: it is handled.
            log.info("watcher.alert_taken", alert_id=alert.id)
            return None
        log.info(
            "watcher.alert_linked",
            alert_id=alert.id,
            fingerprint=alert.fingerprint,
            signal=alert.signal,
            incident_id=opened.incident.id,
            created=opened.created,
        )
        return WatchResult(
            alert_id=alert.id, incident_id=opened.incident.id, created=opened.created
        )

    def _record_pages(self, alerts: list[Any]) -> None:
        """The sentinel groups an alert into a page after it fires: a linked alert
        learns its page on a later pass, so the next alert of that page can join."""
        grouped = {a.id: a.group_id for a in alerts if a.group_id is not None}
        if not grouped:
            return
        with self.service.db.session() as s:
            for alert_id, group_id in grouped.items():
                s.execute(
                    update(IncidentAlert)
                    .where(IncidentAlert.alert_id == alert_id, IncidentAlert.group_id.is_(None))
                    .values(group_id=group_id)
                )

    def _first_paged(self, s: Any, alert_ids: list[int]) -> dict[int, str]:
        """Who was paged first for each alert: the on-call person at the time."""
        from sentinel.models import Notification

        if not alert_ids:
            return {}
        rows = s.execute(
            select(Notification.alert_id, Notification.person, Notification.recipient)
            .where(Notification.alert_id.in_(alert_ids))
            .order_by(Notification.id)
        )
        first: dict[int, str] = {}
        for alert_id, person, recipient in rows:
            first.setdefault(alert_id, person or recipient)
        return first

    def _linked(self, alert_ids: list[int]) -> set[int]:
        if not alert_ids:
            return set()
        with self.service.db.session() as s:
            return set(
                s.scalars(
                    select(IncidentAlert.alert_id).where(IncidentAlert.alert_id.in_(alert_ids))
                )
            )

    def _cursor(self, now: datetime) -> datetime:
        return _load_cursor(self.service, CURSOR, now - self.first_run_lookback)

    def _save_cursor(self, firing_since: datetime, now: datetime) -> None:
        _save_cursor(self.service, CURSOR, firing_since, now)


@dataclass
class ReleaseWatcher:
    """Opens a bad-release incident for every rollback the release gate recorded.
    The gate also reports them over HTTP; this catches the ones it could not
    (postmortems down at the time): the ``release:ID`` reference is the same, so a
    rollback is never taken twice."""

    service: Postmortems
    gate_db: Any  # release_gate.db.Database
    severity: str = "P2"
    first_run_lookback: timedelta = timedelta(hours=24)
    # Releases are found by their start; a canary can run this long before its rollback.
    release_span: timedelta = timedelta(hours=6)

    def run_once(self) -> list[WatchResult]:
        from release_gate.history import releases_between

        now = self.service.clock.now()
        since = self._cursor(now)
        releases = [
            r
            for r in releases_between(self.gate_db, since - self.release_span - OVERLAP, now)
            if r.status == "rolled_back"
            and r.rolled_back_at is not None
            and ensure_utc(r.rolled_back_at) >= since - OVERLAP
        ]
        results: list[WatchResult] = []
        newest = since
        for release in releases:
            newest = max(newest, ensure_utc(release.rolled_back_at))
            ref = f"release:{release.id}"
            if self._known(ref):
                continue
            data = IncidentIn(
                # Made by the platform: shortened with "…" when too long for a title.
                title=(
                    f"Bad release: {release.service} {release.version} by {release.author} "
                    "rolled back"
                ),
                severity=self.severity,
                service=release.service,
                incident_class="bad_release",
                started_at=ensure_utc(release.started_at),
                detected_at=ensure_utc(release.rolled_back_at),
                source="release_gate",
                source_ref=ref,
                release_id=str(release.id),
                rolled_back_at=ensure_utc(release.rolled_back_at),
            )
            opened = self.service.open(data, actor="watcher")
            log.info(
                "watcher.rollback_linked",
                release_id=release.id,
                incident_id=opened.incident.id,
                created=opened.created,
            )
            results.append(
                WatchResult(
                    alert_id=0,
                    release_id=release.id,
                    incident_id=opened.incident.id,
                    created=opened.created,
                )
            )
        _save_cursor(self.service, RELEASE_CURSOR, newest, now)
        return results

    def _known(self, ref: str) -> bool:
        from postmortems.models import Incident, TimelineEntry

        with self.service.db.session() as s:
            return bool(
                s.scalar(select(Incident.id).where(Incident.source_ref == ref).limit(1))
                or s.scalar(select(TimelineEntry.id).where(TimelineEntry.ref == ref).limit(1))
            )

    def _cursor(self, now: datetime) -> datetime:
        return _load_cursor(self.service, RELEASE_CURSOR, now - self.first_run_lookback)


RELEASE_CURSOR = "gate-rollbacks"


class AckResult(BaseModel):
    incident_id: int
    group_id: int
    acknowledged_by: str
    acknowledged_at: datetime


@dataclass
class AckWatcher:
    """Acknowledging the page acknowledges the incident: an incident not yet
    acknowledged whose linked alerts' group (the page) the sentinel records as
    acknowledged gets that time and person, with a timeline entry.

    It looks from the incidents' side rather than behind a cursor over the
    sentinel's acknowledgements: an acknowledgement given before the incident
    was opened, or before its alert was grouped, is never missed, and a pass
    reads only the pages of incidents still waiting for one (bounded by
    ``lookback``). Each pass also records the page of alerts that were linked
    before the sentinel grouped them."""

    service: Postmortems
    sentinel_db: Any  # sentinel.db.Database
    lookback: timedelta = timedelta(days=7)

    def run_once(self) -> list[AckResult]:
        from sentinel.alerting.models import AlertGroup, AuditEvent
        from sentinel.models import Alert

        now = self.service.clock.now()
        with self.service.db.session() as s:
            waiting = list(
                s.execute(
                    select(IncidentAlert.id, IncidentAlert.incident_id, IncidentAlert.alert_id)
                    .join(Incident, Incident.id == IncidentAlert.incident_id)
                    .where(
                        Incident.acknowledged_at.is_(None),
                        Incident.status != IncidentStatus.closed,
                        Incident.detected_at >= now - self.lookback,
                    )
                )
            )
        if not waiting:
            return []
        with self.sentinel_db.session() as s:
            group_of: dict[int, int] = {
                alert_id: group_id
                for alert_id, group_id in s.execute(
                    select(Alert.id, Alert.group_id).where(
                        Alert.id.in_([alert_id for _, _, alert_id in waiting]),
                        Alert.group_id.is_not(None),
                    )
                )
            }
            acked = {
                g.id: (ensure_utc(g.acked_at), g.acked_by or "someone")
                for g in s.scalars(
                    select(AlertGroup).where(
                        AlertGroup.id.in_(set(group_of.values())),
                        AlertGroup.acked_at.is_not(None),
                    )
                )
            }
            doors: dict[int, str] = {}
            if acked:
                for group_id, via in s.execute(
                    select(AuditEvent.group_id, AuditEvent.via)
                    .where(AuditEvent.group_id.in_(acked), AuditEvent.kind == "acknowledge")
                    .order_by(AuditEvent.at, AuditEvent.id)
                ):
                    doors.setdefault(group_id, via)
        self._record_pages(waiting, group_of)
        first: dict[int, tuple[datetime, str, int]] = {}
        for _, incident_id, alert_id in waiting:
            group_id = group_of.get(alert_id)
            if group_id not in acked:
                continue
            at, by = acked[group_id]
            if incident_id not in first or at < first[incident_id][0]:
                first[incident_id] = (at, by, group_id)
        results: list[AckResult] = []
        for incident_id, (at, by, group_id) in sorted(first.items()):
            done = self.service.acknowledge_from_page(
                incident_id, at=at, by=by, via=doors.get(group_id), group_id=group_id
            )
            if done is not None:
                results.append(
                    AckResult(
                        incident_id=incident_id,
                        group_id=group_id,
                        acknowledged_by=by,
                        acknowledged_at=at,
                    )
                )
        return results

    def _record_pages(self, waiting: list[Any], group_of: dict[int, int]) -> None:
        with self.service.db.session() as s:
            for link_id, _, alert_id in waiting:
                if alert_id in group_of:
                    s.execute(
                        update(IncidentAlert)
                        .where(IncidentAlert.id == link_id, IncidentAlert.group_id.is_(None))
                        .values(group_id=group_of[alert_id])
                    )


def _load_cursor(service: Postmortems, name: str, first_run: datetime) -> datetime:
    with service.db.session() as s:
        row = s.get(WatcherCursor, name)
        return row.firing_since if row else first_run


def _save_cursor(service: Postmortems, name: str, since: datetime, now: datetime) -> None:
    with service.db.session() as s:
        row = s.get(WatcherCursor, name)
        if row is None:
            s.add(WatcherCursor(name=name, firing_since=since, updated_at=now))
        elif since > row.firing_since:
            row.firing_since, row.updated_at = since, now
