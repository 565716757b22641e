"""An Alertmanager-compatible webhook receiver (payload version 4), so alerts
from an existing Prometheus are recorded beside the sentinel's own and flow
through the same alert records."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select

from common.bounds import EARLIEST, LATEST, Timestamp
from common.logs import get_logger
from sentinel.alerts import recently_closed, reopen
from sentinel.db import Database
from sentinel.history import series_key
from sentinel.models import ACTIVE_STATES, Alert, AlertState, AlertTransition

log = get_logger(__name__)

SOURCE = "alertmanager"
# Alertmanager's conventional severities onto ours (P0 critical … P3 low).
SEVERITIES = {"critical": "P1", "page": "P1", "error": "P2", "warning": "P3", "info": "P3"}
ZERO_TIME = "0001-01-01T00:00:00Z"  # Alertmanager's "not set"


class AmAlert(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = {}
    starts_at: Timestamp = Field(alias="startsAt")
    ends_at: datetime | None = Field(default=None, alias="endsAt")
    generator_url: str = Field(default="", alias="generatorURL")
    fingerprint: str = Field(default="", max_length=60)

    @field_validator("ends_at")
    @classmethod
    def _unset_if_out_of_range(cls, value: datetime | None) -> datetime | None:
        """Alertmanager's "not set" is year 1; an end we could not compute with is unset too."""
        if value is None:
            return None
        value = value if value.tzinfo else value.replace(tzinfo=UTC)
        return value if EARLIEST <= value < LATEST else None


class AmPayload(BaseModel):
    """https://prometheus.io/docs/alerting/latest/configuration/#webhook_config"""

    model_config = ConfigDict(populate_by_name=True)

    version: Literal["4"]
    group_key: str = Field(alias="groupKey")
    truncated_alerts: int = Field(default=0, alias="truncatedAlerts")
    status: Literal["firing", "resolved"]
    receiver: str
    group_labels: dict[str, str] = Field(default_factory=dict, alias="groupLabels")
    common_labels: dict[str, str] = Field(default_factory=dict, alias="commonLabels")
    common_annotations: dict[str, str] = Field(default_factory=dict, alias="commonAnnotations")
    external_url: str = Field(default="", alias="externalURL")
    alerts: list[AmAlert]


def _severity(labels: dict[str, str]) -> str:
    value = labels.get("severity", "").strip()
    if value.upper() in ("P0", "P1", "P2", "P3"):
        return value.upper()
    return SEVERITIES.get(value.lower(), "P2")


def _summary(alert: AmAlert, severity: str) -> str:
    name = alert.labels.get("alertname", "alert")
    summary = f"[{severity}] {name} {alert.status.upper()} (Prometheus)"
    text = alert.annotations.get("summary") or alert.annotations.get("description")
    if text:
        summary += f": {text}"
    if alert.annotations.get("runbook_url"):
        summary += f" Runbook: {alert.annotations['runbook_url']}"
    return summary


def receive(
    db: Database,
    payload: AmPayload,
    now: datetime,
    flap_window: timedelta = timedelta(minutes=15),
) -> dict[str, int]:
    """Record each alert of a notification: open, update, reopen (flapping) or
    resolve its episode."""
    counts = {"opened": 0, "updated": 0, "resolved": 0, "reopened": 0}
    if payload.truncated_alerts:
        # Alertmanager's max_alerts cut the group: those alerts never reach us.
        log.warning(
            "alertmanager.truncated",
            group_key=payload.group_key,
            truncated=payload.truncated_alerts,
            receiver=payload.receiver,
        )
    with db.session() as s:
        for am in payload.alerts:
            labels = dict(am.labels)
            name = labels.get("alertname", "alertmanager")
            fingerprint = "am:" + (am.fingerprint or series_key(labels))[:60]
            severity = _severity(labels)
            active = s.scalar(
                select(Alert)
                .where(Alert.fingerprint == fingerprint, Alert.state.in_(ACTIVE_STATES))
                .limit(1)
            )
            target = AlertState.firing if am.status == "firing" else AlertState.resolved
            if active is None and target is AlertState.resolved:
                continue  # resolved before we saw it fire: nothing to close
            evidence = {
                "annotations": am.annotations,
                "generator_url": am.generator_url,
                "group_key": payload.group_key,
                "receiver": payload.receiver,
            }
            previous: str | None = None
            if active is None and target is AlertState.firing and flap_window:
                active = recently_closed(s, fingerprint, now - flap_window)
                if active is not None:
                    previous = reopen(active, target)
                    counts["reopened"] += 1
            if active is None:
                active = Alert(
                    fingerprint=fingerprint,
                    signal=name,
                    series=series_key({k: v for k, v in labels.items() if k != "alertname"}),
                    # ``signal`` too, so routes and inhibition rules read both kinds alike.
                    labels={"signal": name, **labels, "severity": severity},
                    severity=severity,
                    source=SOURCE,
                    state=target,
                    summary=_summary(am, severity),
                    runbook=am.annotations.get("runbook_url"),
                    value=None,
                    evidence=evidence,
                    started_at=am.starts_at,
                    firing_at=now,
                    updated_at=now,
                )
                s.add(active)
                s.flush()
                counts["opened"] += 1
            else:
                if previous is None:
                    previous = active.state.value
                    counts["updated" if target is AlertState.firing else "resolved"] += 1
                active.state = target
                active.summary = _summary(am, severity)
                active.evidence = evidence
                active.updated_at = now
            if target is AlertState.resolved:
                ends = am.ends_at
                active.resolved_at = ends or now
            if previous != target.value:
                s.add(
                    AlertTransition(
                        alert_id=active.id,
                        from_state=previous,
                        to_state=target.value,
                        at=now,
                        value=None,
                        evidence=evidence,
                    )
                )
                log.warning(
                    "alert.transition",
                    fingerprint=fingerprint,
                    signal=name,
                    state=target.value,
                    previous=previous,
                    source=SOURCE,
                )
    return counts
