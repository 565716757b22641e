"""Incidents and their postmortems: open (or attach), transition, fill the
form, add action items and timeline entries, and close — only when the
postmortem is complete and the lesson became a detector.

Every write is one transaction with its audit entry; readers get pydantic
``IncidentDetail`` snapshots, never live ORM objects."""

from __future__ import annotations

import functools
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session, selectinload

from common.clock import Clock, SystemClock, ensure_utc
from common.logs import get_logger
from common.secrets import register_secrets, url_password
from postmortems import forms
from postmortems.belonging import (
    AlertFacts,
    Belonging,
    IncidentFacts,
    LinkedFacts,
    ReleaseFacts,
    belongs,
)
from postmortems.db import Database
from postmortems.forms import FieldError, PostmortemForm
from postmortems.models import (
    AUTOMATIC_SOURCES,
    DONE_ACTION_STATUSES,
    OPEN_STATUSES,
    ActionCategory,
    ActionItem,
    ActionKind,
    ActionStatus,
    AuditEntry,
    Incident,
    IncidentAlert,
    IncidentClass,
    IncidentStatus,
    Lesson,
    LessonKind,
    Postmortem,
    Severity,
    TimelineEntry,
)
from postmortems.releases import ReleaseReader, gate_release_reader
from postmortems.schemas import (
    ActionIn,
    ActionOut,
    ActionPatch,
    IncidentDetail,
    IncidentIn,
    IncidentOut,
    IncidentPatch,
    LinkedAlertOut,
    OpenResult,
    PostmortemOut,
    TimelineIn,
    TimelineOut,
)
from postmortems.settings import PostmortemSettings
from postmortems.timing import Timing
from postmortems.titles import compose_title, series_text

log = get_logger("postmortems.service")

SEVERITY_RANK = {Severity.P0: 0, Severity.P1: 1, Severity.P2: 2, Severity.P3: 3}
# Seed 003 §6: every major bug, and every bad release or broken function, gets a monitor.
DETECTOR_RULE_CLASSES = (IncidentClass.bad_release, IncidentClass.broken_functionality)
DETECTOR_RULE_SEVERITIES = (Severity.P0, Severity.P1)

# replay(signal, series, window_start, window_end, detected_at) -> a JSON-able dict
Replayer = Callable[[str, str | None, datetime, datetime, datetime], dict[str, Any]]
# draft(service, start, end, alert_ids, incident_started_at) -> entries with at, kind,
# text, ref, suspect
TimelineDrafter = Callable[[str | None, datetime, datetime, list[int], datetime], list[Any]]
# alerts(ids) -> the sentinel's alerts (objects with id, signal, severity, summary, ...)
AlertReader = Callable[[list[int]], list[Any]]
# on_call(at) -> who was on call then, per the sentinel's on-call schedule
OnCallLookup = Callable[[datetime], str | None]
# The signals that measure what a signal does, whole or per label, itself included.
SignalFamily = Callable[[str], frozenset[str]]


class NotFound(LookupError):
    pass


class Invalid(ValueError):
    """A request the service refuses; ``errors`` name each failing field."""

    def __init__(self, message: str, errors: list[FieldError]) -> None:
        super().__init__(message)
        self.errors = errors


class FormInvalid(Invalid):
    pass


class CloseRefused(Invalid):
    pass


class Conflict(Invalid):
    pass


def _incident_query() -> Any:
    return select(Incident).options(
        selectinload(Incident.postmortem),
        selectinload(Incident.actions),
        selectinload(Incident.timeline),
        selectinload(Incident.alerts),
    )


@dataclass
class Postmortems:
    settings: PostmortemSettings
    db: Database
    clock: Clock = field(default_factory=SystemClock)
    timing: Timing | None = None
    replayer: Replayer | None = None
    drafter: TimelineDrafter | None = None
    alert_reader: AlertReader | None = None
    on_call_lookup: OnCallLookup | None = None
    release_reader: ReleaseReader | None = None
    signal_family: SignalFamily | None = None

    def __post_init__(self) -> None:
        register_secrets(
            [
                self.settings.sentinel_api_token,
                url_password(self.settings.database_url),
                url_password(self.settings.sentinel_database_url),
            ]
        )
        # The defaults read the sentinel and the gate; tests inject their own.
        self.timing = self.timing or Timing.from_settings(self.settings)
        self.replayer = self.replayer or default_replayer(self.settings)
        self.drafter = self.drafter or default_drafter(self.settings)
        self.alert_reader = self.alert_reader or sentinel_alert_reader(
            self.settings.sentinel_database_url
        )
        self.on_call_lookup = self.on_call_lookup or sentinel_on_call(
            self.settings.on_call_schedule
        )
        self.release_reader = self.release_reader or default_release_reader(self.settings)
        self.signal_family = self.signal_family or catalogue_signal_family()

    # ----- reading -------------------------------------------------------------

    def detail(self, incident_id: int) -> IncidentDetail:
        with self.db.session() as s:
            return self._detail(self._load(s, incident_id))

    def list(
        self,
        *,
        service: str | None = None,
        open_only: bool = False,
        status: list[IncidentStatus] | None = None,
        severity: list[Severity] | None = None,
        incident_class: list[IncidentClass] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 200,
    ) -> list[IncidentOut]:
        query = _incident_query().order_by(Incident.id.desc()).limit(limit)
        if service:
            query = query.where(Incident.service == service)
        if open_only:
            query = query.where(Incident.status.in_(OPEN_STATUSES))
        if status:
            query = query.where(Incident.status.in_(status))
        if severity:
            query = query.where(Incident.severity.in_(severity))
        if incident_class:
            query = query.where(Incident.incident_class.in_(incident_class))
        if since:
            query = query.where(Incident.started_at >= since)
        if until:
            query = query.where(Incident.started_at < until)
        now = self.clock.now()
        assert self.timing is not None
        with self.db.session() as s:
            return [IncidentOut.of(i, self.timing, now) for i in s.scalars(query)]

    def actions(self, *, overdue_only: bool = False, owner: str | None = None) -> list[ActionOut]:
        """Action items not done yet, oldest due first (overdue: due before today)."""
        query = (
            select(ActionItem)
            .where(ActionItem.status.not_in(DONE_ACTION_STATUSES))
            .order_by(ActionItem.due_date, ActionItem.id)
        )
        if overdue_only:
            query = query.where(ActionItem.due_date < self.clock.now().date())
        if owner:
            query = query.where(ActionItem.owner == owner)
        with self.db.session() as s:
            return [ActionOut.of(a) for a in s.scalars(query)]

    def incidents_between(
        self, start: datetime, end: datetime, service: str | None = None
    ) -> list[IncidentDetail]:
        """Every incident that started in [start, end), with its records (reports)."""
        query = (
            _incident_query()
            .where(Incident.started_at >= start, Incident.started_at < end)
            .order_by(Incident.started_at)
        )
        if service is not None:
            query = query.where(Incident.service == service)
        with self.db.session() as s:
            return [self._detail(i) for i in s.scalars(query)]

    # ----- opening -------------------------------------------------------------

    def open(
        self, data: IncidentIn, actor: str = "api", *, alerts: list[Any] | None = None
    ) -> OpenResult:
        """Open an incident, or attach to an open incident of the same service.

        With alerts, the report joins only an open incident the alerts belong to
        (``belonging.belongs``: same page, same series or signal, or the release's
        canary and routes); otherwise it opens its own incident, and the timelines
        of both say why. A report without alerts (a rollback, a person) attaches
        to the oldest open incident of the service.
        ``alerts``: the sentinel alerts of ``data.alert_ids`` when the caller read them."""
        now = self.clock.now()
        if alerts is None:
            alerts = self._read_alerts(data.alert_ids)
        with self.db.session() as s:
            _serialize_service(s, data.service)
            existing: Incident | None = None
            reason: str | None = None
            refused: list[tuple[Incident, Belonging]] = []
            if data.attach:
                candidates = list(
                    s.scalars(
                        _incident_query()
                        .where(Incident.service == data.service, Incident.status.in_(OPEN_STATUSES))
                        .order_by(Incident.id)
                    )
                )
                if alerts:
                    existing, reason, refused = self._choose(candidates, alerts, data.service)
                elif candidates:
                    existing = candidates[0]
            if existing is not None:
                self._attach(s, existing, data, alerts, actor, now, reason)
                s.flush()
                log.info(
                    "incident.attached",
                    incident_id=existing.id,
                    service=data.service,
                    source=data.source,
                    source_ref=data.source_ref,
                    reason=reason,
                )
                return OpenResult(incident=self._detail(existing), created=False)
            incident = self._create(s, data, alerts, actor, now)
            self._note_refusals(s, incident, alerts, refused, now)
            s.flush()
            log.info(
                "incident.opened",
                incident_id=incident.id,
                service=incident.service,
                severity=incident.severity.value,
                source=data.source,
                source_ref=data.source_ref,
                not_joined=",".join(str(i.id) for i, _ in refused),
            )
            return OpenResult(incident=self._detail(incident), created=True)

    def _choose(
        self, candidates: list[Incident], alerts: list[Any], service: str
    ) -> tuple[Incident | None, str | None, list[tuple[Incident, Belonging]]]:
        """The open incident the alerts belong to (the strongest link, then the
        oldest), why, and the incidents they do not belong to, each with why not."""
        assert self.signal_family is not None
        facts = [_alert_facts(a, self.signal_family(a.signal)) for a in alerts]
        window = timedelta(minutes=self.settings.release_join_window_minutes)
        best: tuple[int, Incident, str] | None = None
        refused: list[tuple[Incident, Belonging]] = []
        for incident in candidates:
            about = self._incident_facts(incident)
            verdicts = [belongs(f, about, service, window) for f in facts]
            against = next((v for v in verdicts if not v.joins), None)
            if against is not None:
                refused.append((incident, against))
                continue
            strength = min(v.strength for v in verdicts)
            if best is None or strength > best[0]:
                best = (strength, incident, "; ".join(dict.fromkeys(v.reason for v in verdicts)))
        if best is None:
            return None, None, refused
        # Joining one incident, the alerts need no word on the others.
        return best[1], best[2], []

    def _incident_facts(self, incident: Incident) -> IncidentFacts:
        return IncidentFacts(
            incident_id=incident.id,
            service=incident.service,
            alerts=[
                LinkedFacts(signal=a.signal, series=a.series or "", group_id=a.group_id)
                for a in incident.alerts
            ],
            release=self._release_facts(incident),
        )

    def _release_facts(self, incident: Incident) -> ReleaseFacts | None:
        """What bounds a bad-release incident's cause: the gate's record of the
        release when it can be read, else what the incident itself says."""
        if not incident.release_id:
            return None
        facts = None
        try:
            facts = self.release_reader(incident.release_id)
        except Exception as exc:  # noqa: BLE001 - the incident's own fields still bound it
            log.warning(
                "incident.release_unreadable", release_id=incident.release_id, error=str(exc)
            )
        if facts is not None:
            return facts
        return ReleaseFacts(
            release_id=incident.release_id,
            canary_started_at=incident.started_at,
            rolled_back_at=incident.rolled_back_at or incident.detected_at,
        )

    def _note_refusals(
        self,
        s: Session,
        incident: Incident,
        alerts: list[Any],
        refused: list[tuple[Incident, Belonging]],
        now: datetime,
    ) -> None:
        """Both timelines say why the alerts did not join an open incident."""
        what = _alerts_text(alerts)
        for other, verdict in refused:
            self._note(
                s,
                incident,
                now,
                "link",
                f"{what} did not join open incident #{other.id} ({other.title}): {verdict.reason}",
            )
            self._note(
                s,
                other,
                now,
                "link",
                f"{what} opened incident #{incident.id} instead of joining this one: "
                f"{verdict.reason}",
            )

    def _create(
        self, s: Session, data: IncidentIn, alerts: list[Any], actor: str, now: datetime
    ) -> Incident:
        detected = data.detected_at or _earliest(a.firing_at for a in alerts) or now
        started = data.started_at or _earliest(a.started_at for a in alerts) or detected
        on_call = data.on_call or self._on_call_at(detected)
        incident = Incident(
            title=data.title,
            title_author=None if data.source in AUTOMATIC_SOURCES else actor,
            severity=data.severity,
            status=IncidentStatus.open,
            incident_class=data.incident_class,
            class_reason=data.class_reason,
            service=data.service,
            on_call=on_call,
            lead=data.lead,
            source=data.source,
            source_ref=data.source_ref,
            release_id=data.release_id,
            rolled_back_at=data.rolled_back_at,
            started_at=min(started, detected),
            detected_at=detected,
            acknowledged_at=data.acknowledged_at,
            acknowledged_by=actor if data.acknowledged_at else None,
            created_at=now,
            updated_at=now,
        )
        s.add(incident)
        s.flush()
        self._note(s, incident, detected, "status", f"Incident opened ({data.source}) by {actor}")
        if data.rolled_back_at:
            self._note(
                s,
                incident,
                data.rolled_back_at,
                "rollback",
                f"Release {data.release_id or '?'} rolled back",
                ref=data.source_ref,
            )
        self._link_alerts(s, incident, alerts, now)
        self._audit(s, incident.id, actor, "open", data.model_dump(mode="json"), now)
        return incident

    def _attach(
        self,
        s: Session,
        incident: Incident,
        data: IncidentIn,
        alerts: list[Any],
        actor: str,
        now: datetime,
        reason: str | None = None,
    ) -> None:
        changes: dict[str, Any] = {"source": data.source, "source_ref": data.source_ref}
        raised_from: Severity | None = None
        if SEVERITY_RANK[data.severity] < SEVERITY_RANK[incident.severity]:
            changes["severity"] = [incident.severity.value, data.severity.value]
            raised_from = incident.severity
            incident.severity = data.severity
        if data.release_id and not incident.release_id:
            incident.release_id = data.release_id
            changes["release_id"] = data.release_id
        if data.rolled_back_at and not incident.rolled_back_at:
            incident.rolled_back_at = data.rolled_back_at
            self._note(
                s,
                incident,
                data.rolled_back_at,
                "rollback",
                f"Release {data.release_id or '?'} rolled back",
                ref=data.source_ref,
            )
        if (
            incident.incident_class == IncidentClass.unclassified
            and data.incident_class != IncidentClass.unclassified
        ):
            incident.incident_class = data.incident_class
            incident.class_reason = data.class_reason
            changes["incident_class"] = data.incident_class.value
        earliest = _earliest([data.started_at, *(a.started_at for a in alerts)])
        if earliest and earliest < incident.started_at:
            changes["started_at"] = [incident.started_at.isoformat(), earliest.isoformat()]
            incident.started_at = earliest
        origin = f"{data.source}, {data.source_ref}" if data.source_ref else data.source
        if alerts:
            self._note(
                s,
                incident,
                now,
                "link",
                f"{_alerts_text(alerts)} joined ({origin}): {reason or 'linked'}",
                ref=data.source_ref,
            )
            changes["reason"] = reason
        else:
            self._note(
                s,
                incident,
                now,
                "status",
                f"Attached: {data.title} ({origin})",
                ref=data.source_ref,
            )
        self._link_alerts(s, incident, alerts, now)
        if raised_from is not None:
            self._retitle(s, incident, raised_from, now, changes)
        incident.updated_at = now
        self._audit(s, incident.id, actor, "attach", changes, now)

    def _retitle(
        self,
        s: Session,
        incident: Incident,
        raised_from: Severity,
        now: datetime,
        changes: dict[str, Any],
    ) -> None:
        """The severity rose: a title the platform made is made again from what the
        incident now holds; a person's title is kept."""
        said = f"Severity {raised_from.value} → {incident.severity.value}"
        if incident.title_author is not None:
            kept = f"{said}; title kept (written by {incident.title_author})"
            self._note(s, incident, now, "status", kept)
            return
        title = compose_title(incident.severity.value, incident.service, self._subjects(incident))
        if title != incident.title:
            changes["title"] = [incident.title, title]
            incident.title = title
        self._note(s, incident, now, "status", f"{said}; title now “{incident.title}”")

    def _subjects(self, incident: Incident) -> list[str]:
        """What the incident holds, most important first: its release, then its
        alerts' series, most severe first."""
        subjects = []
        if incident.release_id:
            facts = self._release_facts(incident)
            version = facts.version if facts is not None else None
            subjects.append(f"bad release {version or '#' + incident.release_id}")
        ranked = sorted(
            enumerate(incident.alerts),
            key=lambda pair: (_severity_rank(pair[1].severity), pair[0]),
        )
        subjects += [
            series_text(a.signal, a.labels or _labels_of_series(a.series)) for _, a in ranked
        ]
        return subjects

    def link_alerts(self, incident_id: int, alert_ids: list[int], actor: str) -> IncidentDetail:
        alerts = self._read_alerts(alert_ids)
        now = self.clock.now()
        with self.db.session() as s:
            incident = self._load(s, incident_id)
            self._link_alerts(s, incident, alerts, now)
            earliest = _earliest(a.started_at for a in alerts)
            if earliest and earliest < incident.started_at:
                incident.started_at = earliest
            self._audit(s, incident.id, actor, "link_alerts", {"alert_ids": alert_ids}, now)
            s.flush()
            return self._detail(incident)

    def _link_alerts(
        self, s: Session, incident: Incident, alerts: list[Any], now: datetime
    ) -> None:
        known = {a.alert_id for a in incident.alerts}
        taken = (
            set(
                s.scalars(
                    select(IncidentAlert.alert_id).where(
                        IncidentAlert.alert_id.in_([a.id for a in alerts])
                    )
                )
            )
            if alerts
            else set()
        )
        for alert in alerts:
            if alert.id in known or alert.id in taken:
                continue
            incident.alerts.append(
                IncidentAlert(
                    alert_id=alert.id,
                    signal=alert.signal,
                    series=getattr(alert, "series", None) or "",
                    labels=dict(getattr(alert, "labels", None) or {}),
                    group_id=getattr(alert, "group_id", None),
                    severity=alert.severity,
                    summary=alert.summary,
                    started_at=ensure_utc(alert.started_at),
                    firing_at=ensure_utc(alert.firing_at) if alert.firing_at else None,
                    linked_at=now,
                )
            )

    def _on_call_at(self, at: datetime) -> str | None:
        try:
            return self.on_call_lookup(at)
        except Exception as exc:  # noqa: BLE001 - an incident opens without it
            log.warning("incident.on_call_unknown", error=str(exc))
            return None

    def _read_alerts(self, alert_ids: list[int]) -> list[Any]:
        if not alert_ids:
            return []
        found = self.alert_reader(alert_ids)
        missing = sorted(set(alert_ids) - {a.id for a in found})
        if missing:
            raise Invalid(
                f"unknown sentinel alerts: {missing}",
                [FieldError(field="alert_ids", message=f"no such sentinel alert: {missing}")],
            )
        return found

    # ----- changing ------------------------------------------------------------

    def update(self, incident_id: int, patch: IncidentPatch, actor: str) -> IncidentDetail:
        now = self.clock.now()
        changes = patch.model_dump(exclude_unset=True, mode="json")
        with self.db.session() as s:
            incident = self._load(s, incident_id)
            self._refuse_if_closed(incident)
            severity_before = incident.severity
            if patch.title is not None and patch.title != incident.title:
                incident.title_author = actor  # a person's title is kept from now on
            for name, value in patch.model_dump(exclude_unset=True).items():
                if value is None and name in (
                    "title",
                    "severity",
                    "service",
                    "incident_class",
                    "started_at",
                    "detected_at",
                ):
                    continue
                setattr(incident, name, value)
            if (
                incident.incident_class == IncidentClass.other
                and not (incident.class_reason or "").strip()
            ):
                raise Invalid(
                    "an 'other' incident needs a reason",
                    [FieldError(field="class_reason", message="required when the class is other")],
                )
            if incident.started_at > incident.detected_at:
                raise Invalid(
                    "started after detected",
                    [FieldError(field="started_at", message="must not be after detected_at")],
                )
            if SEVERITY_RANK[incident.severity] < SEVERITY_RANK[severity_before]:
                self._retitle(s, incident, severity_before, now, changes)
            incident.updated_at = now
            self._audit(s, incident.id, actor, "update", changes, now)
            s.flush()
            return self._detail(incident)

    def transition(
        self, incident_id: int, change: Any, actor: str, *, via: str | None = None
    ) -> IncidentDetail:
        """Acknowledge, mitigate, resolve or reopen (``change``: a TransitionIn); ``via``
        (e.g. "console") is recorded in the audit entry."""
        now = self.clock.now()
        at = ensure_utc(change.at) if change.at else now
        with self.db.session() as s:
            incident = self._load(s, incident_id)
            self._refuse_if_closed(incident)
            if change.acknowledge and incident.acknowledged_at is None:
                incident.acknowledged_at, incident.acknowledged_by = at, actor
                self._note(s, incident, at, "ack", f"Acknowledged by {actor}")
            target = change.status
            if target is not None and target != incident.status:
                if target == IncidentStatus.closed:
                    raise Conflict(
                        "use close",
                        [FieldError(field="status", message="close through the close action")],
                    )
                if target == IncidentStatus.open:
                    incident.resolved_at = None
                    incident.mitigated_at = None
                if target == IncidentStatus.mitigated:
                    incident.mitigated_at = incident.mitigated_at or at
                if target == IncidentStatus.resolved:
                    incident.mitigated_at = incident.mitigated_at or at
                    incident.resolved_at = at
                self._note(
                    s,
                    incident,
                    at,
                    "status",
                    f"{incident.status.value} → {target.value} by {actor}"
                    + (f": {change.note}" if change.note else ""),
                )
                log.info(
                    "incident.transition",
                    incident_id=incident.id,
                    from_status=incident.status.value,
                    to_status=target.value,
                    actor=actor,
                )
                incident.status = target
            incident.updated_at = now
            detail = change.model_dump(mode="json") | _via(via)
            self._audit(s, incident.id, actor, "transition", detail, now)
            s.flush()
            return self._detail(incident)

    def acknowledge_from_page(
        self, incident_id: int, *, at: datetime, by: str, via: str | None, group_id: int
    ) -> IncidentDetail | None:
        """Someone acknowledged the page (the sentinel's alert group) behind the
        incident: the incident is acknowledged then, by them. None when it already
        was (a person here, or an earlier page) or is closed."""
        now = self.clock.now()
        at = ensure_utc(at)
        with self.db.session() as s:
            incident = self._load(s, incident_id)
            if incident.acknowledged_at is not None or incident.status == IncidentStatus.closed:
                return None
            incident.acknowledged_at, incident.acknowledged_by = at, by
            door = f" via {via}" if via else ""
            self._note(
                s,
                incident,
                at,
                "ack",
                f"Acknowledged by {by}{door} (the page: sentinel alert group {group_id})",
                ref=f"group:{group_id}",
            )
            incident.updated_at = now
            self._audit(
                s,
                incident.id,
                by,
                "acknowledge.page",
                {"group_id": group_id, "at": at.isoformat(), "via": via},
                now,
            )
            s.flush()
            log.info(
                "incident.acknowledged", incident_id=incident.id, by=by, via=via, group_id=group_id
            )
            return self._detail(incident)

    def save_postmortem(
        self,
        incident_id: int,
        form: PostmortemForm,
        actor: str,
        *,
        draft: bool = False,
        via: str | None = None,
    ) -> IncidentDetail:
        """Store the form. Unless ``draft``, an incomplete form is refused (FormInvalid)
        and nothing is stored; a draft is stored as it is, marked incomplete. ``via``
        (e.g. "console") is recorded in the audit entry: where the person wrote it."""
        now = self.clock.now()
        with self.db.session() as s:
            incident = self._load(s, incident_id)
            self._refuse_if_closed(incident)
            form = _with_release(form, incident.release_id, incident.rolled_back_at)
            errors = forms.validate(form, incident.incident_class)
            if errors and not draft:
                log.info(
                    "postmortem.refused",
                    incident_id=incident.id,
                    fields=",".join(e.field for e in errors),
                )
                raise FormInvalid("the postmortem is incomplete", errors)
            pm = incident.postmortem or Postmortem(incident_id=incident.id, lessons=[])
            pm.root_cause = _clean(form.root_cause)
            pm.resolution = _clean(form.resolution)
            pm.business_impact = _clean(form.business_impact)
            pm.conclusions = _clean(form.conclusions)
            pm.release_id = _clean(form.release_id)
            pm.rolled_back_at = form.rolled_back_at
            pm.dependency = _clean(form.dependency)
            pm.lessons = [lesson.model_dump() for lesson in form.lessons]
            pm.complete = not errors
            pm.updated_at = now
            if not errors:
                pm.submitted_by, pm.submitted_at = actor, now
            incident.postmortem = pm
            if pm.release_id and not incident.release_id:
                incident.release_id = pm.release_id
            if pm.rolled_back_at and not incident.rolled_back_at:
                incident.rolled_back_at = pm.rolled_back_at
            incident.updated_at = now
            self._audit(
                s,
                incident.id,
                actor,
                "postmortem.draft" if draft else "postmortem",
                {"complete": pm.complete} | _via(via),
                now,
            )
            s.flush()
            log.info("postmortem.saved", incident_id=incident.id, complete=pm.complete)
            return self._detail(incident)

    def add_action(self, incident_id: int, data: ActionIn, actor: str) -> ActionOut:
        now = self.clock.now()
        with self.db.session() as s:
            incident = self._load(s, incident_id)
            action = ActionItem(
                incident_id=incident.id,
                title=data.title.strip(),
                kind=data.kind,
                category=data.category,
                owner=data.owner.strip(),
                due_date=data.due_date,
                status=data.status,
                signal=_clean(data.signal),
                series=_clean(data.series),
                created_at=now,
                updated_at=now,
                done_at=now if data.status in DONE_ACTION_STATUSES else None,
            )
            s.add(action)
            incident.updated_at = now
            s.flush()
            self._audit(
                s,
                incident.id,
                actor,
                "action.add",
                {"action_id": action.id, **data.model_dump(mode="json")},
                now,
            )
            if action.signal:
                action.replay = self._replay(incident, action)
            log.info(
                "action.added",
                incident_id=incident.id,
                action_id=action.id,
                kind=action.kind.value,
                owner=action.owner,
            )
            return ActionOut.of(action)

    def update_action(self, action_id: int, patch: ActionPatch, actor: str) -> ActionOut:
        now = self.clock.now()
        with self.db.session() as s:
            action = s.get(ActionItem, action_id)
            if action is None:
                raise NotFound(f"action item {action_id} not found")
            values = patch.model_dump(exclude_unset=True)
            if values.get("signal") and action.kind != ActionKind.detective:
                # The action's kind, not the request, refuses it.
                raise Conflict(
                    "only detective actions have a signal",
                    [
                        FieldError(
                            field="signal", message="only detective actions are linked to a signal"
                        )
                    ],
                )
            for name, value in values.items():
                setattr(action, name, value)
            if "status" in values:
                action.done_at = now if action.status in DONE_ACTION_STATUSES else None
            action.updated_at = now
            if {"signal", "series"} & values.keys() and action.signal:
                incident = self._load(s, action.incident_id)
                action.replay = self._replay(incident, action)
            self._audit(
                s,
                action.incident_id,
                actor,
                "action.update",
                {"action_id": action.id, **patch.model_dump(exclude_unset=True, mode="json")},
                now,
            )
            s.flush()
            return ActionOut.of(action)

    def replay_action(self, action_id: int, actor: str) -> ActionOut:
        with self.db.session() as s:
            action = s.get(ActionItem, action_id)
            if action is None:
                raise NotFound(f"action item {action_id} not found")
            if not action.signal:
                # A well-formed request the action's state refuses: 409, like a close.
                raise Conflict(
                    "no signal",
                    [
                        FieldError(
                            field="signal", message="link the action to a sentinel signal first"
                        )
                    ],
                )
            action.replay = self._replay(self._load(s, action.incident_id), action)
            s.flush()
            return ActionOut.of(action)

    def add_timeline_entry(
        self, incident_id: int, data: TimelineIn, actor: str, *, via: str | None = None
    ) -> TimelineOut:
        now = self.clock.now()
        with self.db.session() as s:
            incident = self._load(s, incident_id)
            entry = TimelineEntry(
                incident_id=incident.id,
                at=ensure_utc(data.at),
                kind=data.kind,
                text=data.text.strip(),
                origin="manual",
                author=actor,
                created_at=now,
            )
            s.add(entry)
            s.flush()
            detail = {"entry_id": entry.id} | _via(via)
            self._audit(s, incident.id, actor, "timeline.add", detail, now)
            return TimelineOut.of(entry)

    def draft_timeline(self, incident_id: int, actor: str) -> IncidentDetail:
        """Add what the platform recorded in the incident window: alerts with their
        values, notifications and acknowledgements, releases and rollbacks (a
        suspect release flagged). Running it again adds only what is new."""
        now = self.clock.now()
        with self.db.session() as s:
            incident = self._load(s, incident_id)
            start = incident.started_at - timedelta(hours=1)
            end = incident.resolved_at or now
            alert_ids = [a.alert_id for a in incident.alerts]
            service = incident.service
            started = incident.started_at
        entries = self.drafter(service, start, end, alert_ids, started)
        with self.db.session() as s:
            incident = self._load(s, incident_id)
            seen = {(t.kind, t.ref, t.at) for t in incident.timeline if t.origin == "draft"}
            added = 0
            for e in entries:
                at = ensure_utc(e.at)
                if (e.kind, e.ref, at) in seen:
                    continue
                seen.add((e.kind, e.ref, at))
                incident.timeline.append(
                    TimelineEntry(
                        at=at,
                        kind=e.kind,
                        text=e.text,
                        ref=e.ref,
                        suspect=bool(e.suspect),
                        origin="draft",
                        author=None,
                        created_at=now,
                    )
                )
                added += 1
            self._audit(s, incident.id, actor, "timeline.draft", {"added": added}, now)
            s.flush()
            log.info("timeline.drafted", incident_id=incident.id, added=added)
            return self._detail(incident)

    # ----- closing -------------------------------------------------------------

    def close_problems(self, incident: Incident) -> list[FieldError]:
        """Everything that stands between this incident and closing it."""
        problems: list[FieldError] = []
        if incident.status == IncidentStatus.closed:
            return problems
        if incident.status != IncidentStatus.resolved:
            problems.append(FieldError(field="status", message="resolve the incident first"))
        if incident.incident_class == IncidentClass.unclassified:
            problems.append(
                FieldError(
                    field="incident_class",
                    message="classify the incident (seed 003's six classes or other with a reason)",
                )
            )
        pm = incident.postmortem
        if pm is None:
            problems.append(FieldError(field="postmortem", message="the postmortem is not filled"))
        form = _with_release(_form_of(pm), incident.release_id, incident.rolled_back_at)
        problems += forms.validate(form, incident.incident_class)
        live = [a for a in incident.actions if a.status != ActionStatus.cancelled]
        if not live:
            problems.append(
                FieldError(
                    field="action_items",
                    message="at least one action item: an incident must "
                    "leave something better behind",
                )
            )
        if incident.incident_class == IncidentClass.latent_bug and not any(
            a.category == ActionCategory.sibling_scan for a in live
        ):
            problems.append(
                FieldError(
                    field="action_items",
                    message="a latent bug needs a sibling-scan action: look "
                    "for the same egg elsewhere in the code",
                )
            )
        if incident.incident_class == IncidentClass.failed_manual_intervention and not any(
            a.category in (ActionCategory.runbook, ActionCategory.automation) for a in live
        ):
            problems.append(
                FieldError(
                    field="action_items",
                    message="a failed manual intervention needs a runbook or automation action",
                )
            )
        if self.detector_rule_applies(incident):
            detective = [a for a in live if a.kind == ActionKind.detective and a.signal]
            if not detective:
                problems.append(
                    FieldError(
                        field="detective_action",
                        message="a detective action linked to a sentinel "
                        "signal is required (every major bug gets a monitor)",
                    )
                )
            elif all((a.replay or {}).get("error") for a in detective):
                first = detective[0]
                problems.append(
                    FieldError(
                        field="detective_action",
                        message=f"the replay of signal {first.signal!r} failed: "
                        f"{(first.replay or {}).get('error')}",
                    )
                )
        return problems

    @staticmethod
    def detector_rule_applies(incident: Incident | IncidentDetail) -> bool:
        return (
            incident.severity in DETECTOR_RULE_SEVERITIES
            or incident.incident_class in DETECTOR_RULE_CLASSES
        )

    def close(self, incident_id: int, actor: str, *, via: str | None = None) -> IncidentDetail:
        now = self.clock.now()
        with self.db.session() as s:
            incident = self._load(s, incident_id)
            if incident.status == IncidentStatus.closed:
                return self._detail(incident)
        # Replays that never ran (or ran before the window was known) run now,
        # outside the write transaction: detectors over history take a while.
        replays = {
            action.id: self._replay(incident, action)
            for action in incident.actions
            if action.signal and (action.replay is None or action.replay.get("error"))
        }
        with self.db.session() as s:
            incident = self._load(s, incident_id)
            if incident.status == IncidentStatus.closed:
                return self._detail(incident)
            for action in incident.actions:
                if action.id in replays:
                    action.replay = replays[action.id]
            problems = self.close_problems(incident)
            if problems:
                log.info(
                    "incident.close_refused",
                    incident_id=incident.id,
                    fields=",".join(p.field for p in problems),
                )
                raise CloseRefused("the incident cannot be closed yet", problems)
            incident.status = IncidentStatus.closed
            incident.closed_at = now
            incident.updated_at = now
            self._note(s, incident, now, "status", f"Closed by {actor}")
            self._register_lessons(s, incident, now)
            self._audit(s, incident.id, actor, "close", _via(via), now)
            s.flush()
            log.info("incident.closed", incident_id=incident.id, actor=actor)
            return self._detail(incident)

    def _register_lessons(self, s: Session, incident: Incident, now: datetime) -> None:
        pm = incident.postmortem
        assert pm is not None
        for lesson in pm.lessons:
            s.add(
                Lesson(
                    incident_id=incident.id,
                    kind=LessonKind(lesson["kind"]),
                    text=lesson["text"],
                    service=incident.service,
                    incident_class=incident.incident_class.value,
                    created_at=now,
                )
            )

    # ----- internals -----------------------------------------------------------

    def _replay(self, incident: Incident, action: ActionItem) -> dict[str, Any]:
        """Would this signal's detector have caught the incident, and how much earlier?"""
        assert action.signal is not None
        lookback = timedelta(hours=self.settings.replay_lookback_hours)
        window_start = incident.started_at - lookback
        window_end = incident.resolved_at or self.clock.now()
        try:
            result = self.replayer(
                action.signal, action.series, window_start, window_end, incident.detected_at
            )
        except Exception as exc:  # noqa: BLE001 - shown to the lead, never a crash
            log.warning(
                "replay.failed", incident_id=incident.id, signal=action.signal, error=str(exc)
            )
            return {"signal": action.signal, "error": f"{type(exc).__name__}: {exc}"}
        log.info(
            "replay.done",
            incident_id=incident.id,
            signal=action.signal,
            would_have_fired=result.get("would_have_fired"),
            lead_seconds=result.get("lead_seconds"),
        )
        return result

    def _load(self, s: Session, incident_id: int) -> Incident:
        incident = s.scalars(_incident_query().where(Incident.id == incident_id)).first()
        if incident is None:
            raise NotFound(f"incident {incident_id} not found")
        return incident

    def _detail(self, incident: Incident) -> IncidentDetail:
        assert self.timing is not None
        now = self.clock.now()
        base = IncidentOut.of(incident, self.timing, now)
        return IncidentDetail(
            **base.model_dump(),
            postmortem=PostmortemOut.of(incident.postmortem) if incident.postmortem else None,
            actions=[ActionOut.of(a) for a in incident.actions],
            timeline=[
                TimelineOut.of(t)
                for t in sorted(incident.timeline, key=lambda t: (t.at, t.id or 0))
            ],
            alerts=[LinkedAlertOut.of(a) for a in incident.alerts],
            close_problems=self.close_problems(incident),
        )

    @staticmethod
    def _refuse_if_closed(incident: Incident) -> None:
        if incident.status == IncidentStatus.closed:
            raise Conflict(
                "the incident is closed",
                [FieldError(field="status", message="the incident is closed")],
            )

    @staticmethod
    def _note(
        s: Session,
        incident: Incident,
        at: datetime,
        kind: str,
        text: str,
        ref: str | None = None,
    ) -> None:
        incident.timeline.append(
            TimelineEntry(
                at=at,
                kind=kind,
                text=text,
                ref=ref,
                suspect=False,
                origin="system",
                created_at=at,
            )
        )

    @staticmethod
    def _audit(
        s: Session,
        incident_id: int | None,
        actor: str,
        action: str,
        detail: dict[str, Any],
        now: datetime,
    ) -> None:
        s.add(
            AuditEntry(incident_id=incident_id, at=now, actor=actor, action=action, detail=detail)
        )


def _via(via: str | None) -> dict[str, str]:
    """Where a person did it (e.g. "console"), for the audit entry; nothing when here."""
    return {"via": via} if via else {}


def _serialize_service(s: Session, service: str) -> None:
    """Two reports of one service at once (the gate and the watcher) must not both
    open an incident: on PostgreSQL they queue on a lock of that service until the
    first commits. SQLite transactions already run one at a time (BEGIN IMMEDIATE)."""
    if s.get_bind().dialect.name == "postgresql":
        key = zlib.crc32(f"postmortems:{service}".encode())
        s.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def _form_of(pm: Postmortem | PostmortemOut | None) -> PostmortemForm:
    if pm is None:
        return PostmortemForm()
    return PostmortemForm(
        root_cause=pm.root_cause,
        resolution=pm.resolution,
        business_impact=pm.business_impact,
        conclusions=pm.conclusions,
        release_id=pm.release_id,
        rolled_back_at=pm.rolled_back_at,
        dependency=pm.dependency,
        lessons=pm.lessons or [],
    )


def _with_release(
    form: PostmortemForm, release_id: str | None, rolled_back_at: datetime | None
) -> PostmortemForm:
    """What the release gate already told us need not be typed again."""
    return form.model_copy(
        update={
            "release_id": form.release_id or release_id,
            "rolled_back_at": form.rolled_back_at or rolled_back_at,
        }
    )


def form_of(detail: IncidentDetail) -> PostmortemForm:
    """The form as last saved, for re-display (defaults from the incident)."""
    return _with_release(_form_of(detail.postmortem), detail.release_id, detail.rolled_back_at)


def _clean(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value or None


def _alert_facts(alert: Any, family: frozenset[str]) -> AlertFacts:
    started = ensure_utc(alert.started_at)
    return AlertFacts(
        alert_id=alert.id,
        signal=alert.signal,
        labels=dict(getattr(alert, "labels", None) or {}),
        started_at=started,
        fired_at=ensure_utc(alert.firing_at) if alert.firing_at else started,
        series=getattr(alert, "series", None) or "",
        group_id=getattr(alert, "group_id", None),
        family=family,
    )


def _alerts_text(alerts: list[Any]) -> str:
    """'Alert #12 http.error_ratio{route=/api/jobs} (P0)'."""
    named = [
        f"#{a.id} {series_text(a.signal, dict(getattr(a, 'labels', None) or {}))} ({a.severity})"
        for a in alerts
    ]
    return ("Alert " if len(named) == 1 else "Alerts ") + ", ".join(named)


def _severity_rank(value: str) -> int:
    try:
        return SEVERITY_RANK[Severity(value)]
    except ValueError:
        return len(SEVERITY_RANK)


def _labels_of_series(series: str | None) -> dict[str, str]:
    from sentinel.history import parse_series_key

    return parse_series_key(series) if series else {}


def _earliest(values: Any) -> datetime | None:
    present = [ensure_utc(v) for v in values if v is not None]
    return min(present) if present else None


# ----- the sentinel and the release gate, read ------------------------------------


def sentinel_alert_reader(url: str) -> AlertReader:
    def read(ids: list[int]) -> list[Any]:
        from sentinel.db import Database as SentinelDatabase
        from sentinel.models import Alert

        db = SentinelDatabase(url)
        try:
            with db.session() as s:
                return list(s.scalars(select(Alert).where(Alert.id.in_(ids))))
        finally:
            db.dispose()

    return read


def sentinel_on_call(schedule_name: str | None) -> OnCallLookup:
    """Who the sentinel's on-call schedule (``SENTINEL_ALERTING``) had on call: the
    named schedule, or the first one of the configuration."""

    @functools.cache
    def alerting() -> Any:  # loaded on first use, so a bad file only costs the on-call name
        from sentinel.alerting.config import load_alerting_config
        from sentinel.settings import SentinelSettings

        return load_alerting_config(SentinelSettings().alerting)

    def lookup(at: datetime) -> str | None:
        from sentinel.alerting.config import schedule
        from sentinel.alerting.schedules import who_is_on_call

        config = alerting()
        name = schedule_name or next(iter(config.schedules), None)
        if name is None:
            return None
        found = who_is_on_call(schedule(config, name), at)
        return found.person if found else None

    return lookup


def catalogue_signal_family() -> SignalFamily:
    """The sentinel's catalogue says which signals measure one thing (``part_of``).
    Unreadable, it says nothing: each alert then stands for its own signal."""

    @functools.cache
    def catalogue() -> Any:  # read once, on the first alert
        from postmortems.replay import load_replay_catalogue

        try:
            return load_replay_catalogue()
        except Exception as exc:  # noqa: BLE001 - the other links still join alerts
            log.warning("incident.catalogue_unreadable", error=str(exc))
            return None

    def family(signal: str) -> frozenset[str]:
        found = catalogue()
        return found.family(signal) if found is not None else frozenset({signal})

    return family


def default_replayer(settings: PostmortemSettings) -> Replayer:
    @functools.cache
    def catalogue() -> Any:  # read once, not for every action replayed
        from postmortems.replay import load_replay_catalogue

        return load_replay_catalogue()

    def replay(
        signal: str, series: str | None, start: datetime, end: datetime, detected: datetime
    ) -> dict[str, Any]:
        from postmortems.replay import replay_detector
        from sentinel.db import Database as SentinelDatabase

        db = SentinelDatabase(settings.sentinel_database_url)
        try:
            result = replay_detector(
                db,
                signal,
                window_start=start,
                window_end=end,
                detected_at=detected,
                series=series,
                catalogue=catalogue(),
            )
        finally:
            db.dispose()
        return result.model_dump(mode="json")

    return replay


def default_drafter(settings: PostmortemSettings) -> TimelineDrafter:
    def draft(
        service: str | None,
        start: datetime,
        end: datetime,
        alert_ids: list[int],
        started: datetime,
    ) -> list[Any]:
        from postmortems.timeline import draft_timeline
        from sentinel.db import Database as SentinelDatabase

        sentinel_db = SentinelDatabase(settings.sentinel_database_url)
        gate_db = gate_database(settings)
        try:
            return draft_timeline(
                sentinel_db,
                gate_db,
                service=service,
                start=start,
                end=end,
                alert_ids=alert_ids,
                incident_started_at=started,
            )
        finally:
            sentinel_db.dispose()
            if gate_db is not None:
                gate_db.dispose()

    return draft


def default_release_reader(settings: PostmortemSettings) -> ReleaseReader:
    """The gate's record of a release, when its database is configured (opened on
    first use, kept for the process)."""
    if not settings.gate_database_url:
        return lambda _release_id: None

    @functools.cache
    def reader() -> ReleaseReader:
        return gate_release_reader(gate_database(settings))

    def read(release_id: str) -> ReleaseFacts | None:
        return reader()(release_id)

    return read


def gate_database(settings: PostmortemSettings) -> Any:
    if not settings.gate_database_url:
        return None
    from release_gate.db import Database as GateDatabase

    return GateDatabase(settings.gate_database_url)


def build_service(
    settings: PostmortemSettings | None = None,
    *,
    clock: Clock | None = None,
    migrate: bool = True,
) -> Postmortems:
    """The service on its configured database (created and migrated if needed)."""
    settings = settings or PostmortemSettings()
    db = Database(settings.database_url)
    if migrate:
        db.migrate()
    return Postmortems(settings=settings, db=db, clock=clock or SystemClock())
