"""The alert state machine: inactive → pending → firing → resolved, plus
no-data. ``decide`` is pure; ``AlertBook`` records every transition with its
evidence and keeps the active alert of each series in memory, so a cycle
over thousands of quiet series touches the database only when something
changes."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from common.logs import get_logger
from sentinel.catalogue.models import NoDataPolicy, SignalSpec
from sentinel.db import Database
from sentinel.detectors.base import Verdict
from sentinel.models import ACTIVE_STATES, Alert, AlertState, AlertTransition

log = get_logger(__name__)


def fingerprint(signal: str, series: str) -> str:
    return hashlib.sha256(f"{signal}\x00{series}".encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Step:
    """What one evaluation says about one series."""

    verdict: Verdict
    silent_seconds: float  # time since the series last had data
    policy: NoDataPolicy
    absence_seconds: float


def decide(current: AlertState | None, step: Step) -> AlertState | None:
    """The state the series' alert should move to, or None to leave it be.
    ``current`` is the active alert's state (None: no active alert)."""
    v = step.verdict
    if v.no_data:
        if step.policy is NoDataPolicy.keep:
            return None
        if step.policy is NoDataPolicy.ok:
            return _calm(current)
        if step.silent_seconds >= step.absence_seconds and current is not AlertState.no_data:
            return AlertState.no_data
        return None
    if v.firing:
        return None if current is AlertState.firing else AlertState.firing
    if v.anomalous:
        if current is None or current is AlertState.no_data:
            return AlertState.pending
        return None  # pending stays pending; firing keeps firing until the detector lets go
    return _calm(current)


def _calm(current: AlertState | None) -> AlertState | None:
    if current is AlertState.pending:
        return AlertState.cancelled
    if current in (AlertState.firing, AlertState.no_data):
        return AlertState.resolved
    return None


def _fmt(value: float | None) -> str:
    if value is None:
        return "no data"
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"


def alert_text(
    spec: SignalSpec,
    labels: dict[str, str],
    state: AlertState,
    verdict: Verdict,
    started_at: datetime,
    provenance: dict[str, Any] | None,
) -> str:
    """One SMS-sized paragraph: what, how bad, since when, how trustworthy, what to do."""
    where = ",".join(f"{k}={v}" for k, v in labels.items())
    series = "{" + where + "}" if where else ""
    head = f"[{spec.severity.value}] {spec.name}{series} {state.value.upper()}"
    if state is AlertState.no_data:
        body = f"no data since {started_at:%H:%M} UTC ({verdict.reason})"
    else:
        unit = f" {spec.unit}" if spec.unit and spec.unit != "ratio" else ""
        body = f"{_fmt(verdict.value)}{unit}{_band(verdict)} since {started_at:%H:%M} UTC. "
        body += verdict.reason
    parts = [f"{head}: {body}"]
    if provenance:
        parts.append(
            f"Threshold tuned {provenance.get('tuned_at', '?')[:10]} on "
            f"{provenance.get('days', '?')}d: ~{provenance.get('false_alerts_per_week', '?')}"
            " false alerts/week."
        )
    if spec.runbook:
        parts.append("Runbook: " + _first_paragraph(spec.runbook))
    return " ".join(parts)


def _band(v: Verdict) -> str:
    if v.lower is not None and v.upper is not None:
        return f", expected {_fmt(v.lower)}–{_fmt(v.upper)}"
    if v.upper is not None:
        return f", expected ≤ {_fmt(v.upper)}"
    if v.lower is not None:
        return f", expected ≥ {_fmt(v.lower)}"
    return ""


def _first_paragraph(text: str, limit: int = 160) -> str:
    paragraph = " ".join(text.strip().split("\n\n")[0].split())
    return paragraph if len(paragraph) <= limit else paragraph[: limit - 1].rstrip() + "…"


@dataclass
class _Active:
    alert_id: int
    state: AlertState


def recently_closed(session: Session, fp: str, since: datetime) -> Alert | None:
    """The episode of ``fp`` that closed at or after ``since``: a re-fire this
    soon is the same problem flapping, and reopens it."""
    return session.scalar(
        select(Alert)
        .where(
            Alert.fingerprint == fp,
            Alert.state.in_((AlertState.resolved, AlertState.cancelled)),
            Alert.resolved_at >= since,
        )
        .order_by(Alert.id.desc())
        .limit(1)
    )


def reopen(alert: Alert, target: AlertState) -> str:
    """Bring a closed episode back; returns the state it left."""
    previous = alert.state.value
    alert.state = target
    alert.resolved_at = None
    alert.reopened += 1
    return previous


class AlertBook:
    def __init__(self, db: Database, flap_window: timedelta = timedelta(minutes=15)) -> None:
        self.db = db
        self.flap_window = flap_window
        self._active: dict[str, _Active] = {}
        self.reload()

    def reload(self) -> None:
        """Read the active alerts (after start-up or a change of leader)."""
        with self.db.session() as s:
            rows = s.execute(
                select(Alert.fingerprint, Alert.id, Alert.state).where(
                    Alert.state.in_(ACTIVE_STATES)
                )
            ).all()
        self._active = {fp: _Active(alert_id, AlertState(state)) for fp, alert_id, state in rows}

    def state_of(self, signal: str, series: str) -> AlertState | None:
        active = self._active.get(fingerprint(signal, series))
        return active.state if active else None

    def observe(
        self,
        spec: SignalSpec,
        series: str,
        labels: dict[str, str],
        step: Step,
        now: datetime,
        evidence: dict[str, Any],
        provenance: dict[str, Any] | None = None,
        quiet: str | None = None,
    ) -> AlertState | None:
        """Apply one evaluation; returns the new state if there was a transition.
        ``quiet`` (why, e.g. the start-up grace) lets an alert calm down but not
        start: no pending, firing or no-data while it is set."""
        fp = fingerprint(spec.name, series)
        active = self._active.get(fp)
        target = decide(active.state if active else None, step)
        if target is None:
            return None
        if quiet is not None and target in ACTIVE_STATES:
            return None
        v = step.verdict
        # The unit travels with the evidence: the page's words say "912 s", not "912".
        evidence = {**evidence, "unit": spec.unit, "provenance": provenance}
        with self.db.session() as s:
            previous: str | None = None
            alert = None
            if active is None and target in ACTIVE_STATES and self.flap_window:
                alert = recently_closed(s, fp, now - self.flap_window)
                if alert is not None:
                    previous = reopen(alert, target)
            if active is None and alert is None:
                started = now if v.no_data else _utc(v.t)
                alert = Alert(
                    fingerprint=fp,
                    signal=spec.name,
                    series=series,
                    labels={
                        **spec.labels,
                        **labels,
                        "signal": spec.name,
                        "severity": spec.severity.value,
                    },
                    severity=spec.severity.value,
                    source="sentinel",
                    state=target,
                    summary="",
                    runbook=spec.runbook or None,
                    value=v.value,
                    evidence=evidence,
                    started_at=started,
                    updated_at=now,
                )
                s.add(alert)
                s.flush()
            elif active is not None:
                alert = s.get(Alert, active.alert_id)
                assert alert is not None
                previous = active.state.value
            assert alert is not None
            alert.state = target
            alert.value = v.value
            alert.evidence = evidence
            alert.updated_at = now
            if target is AlertState.firing and alert.firing_at is None:
                alert.firing_at = now
            if target in (AlertState.resolved, AlertState.cancelled):
                alert.resolved_at = now
            alert.summary = alert_text(spec, labels, target, v, alert.started_at, provenance)
            s.add(
                AlertTransition(
                    alert_id=alert.id,
                    from_state=previous,
                    to_state=target.value,
                    at=now,
                    value=v.value,
                    evidence=evidence,
                )
            )
            alert_id = alert.id
        if target in ACTIVE_STATES:
            self._active[fp] = _Active(alert_id, target)
        else:
            self._active.pop(fp, None)
        log.warning(
            "alert.transition",
            fingerprint=fp,
            signal=spec.name,
            series=series,
            state=target.value,
            previous=previous,
            value=v.value,
        )
        return target


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)
