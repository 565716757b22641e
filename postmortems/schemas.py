"""What crosses the boundary: requests into the service and what it answers
(HTTP, CLI, web and the release gate all speak these)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from common.bounds import AwareTimestamp, Day, DbId
from postmortems.forms import FieldError
from postmortems.models import (
    AUTOMATIC_SOURCES,
    ActionCategory,
    ActionItem,
    ActionKind,
    ActionStatus,
    Incident,
    IncidentAlert,
    IncidentClass,
    IncidentStatus,
    Postmortem,
    Severity,
    TimelineEntry,
)
from postmortems.timing import Timing
from postmortems.titles import MAX_TITLE_CHARS, fit_title, title_problem


def _not_null(cls: type, value: Any) -> Any:  # noqa: ARG001 - a pydantic validator
    """Leaving a field out keeps it; an explicit null cannot clear a required one."""
    if value is None:
        raise ValueError("cannot be null: leave the field out to keep its value")
    return value


def _title_fits(value: str) -> str:
    problem = title_problem(value)
    if problem:
        raise ValueError(problem)
    return value


class IncidentIn(BaseModel):
    # Under 80 characters: a person's longer title is refused (422 naming the field),
    # the platform's own (watcher, release gate) is shortened with "…".
    title: str = Field(min_length=3, max_length=MAX_TITLE_CHARS)
    severity: Severity
    service: str = Field(min_length=1, max_length=128)
    incident_class: IncidentClass = IncidentClass.unclassified
    class_reason: str | None = Field(default=None, max_length=4000)
    on_call: str | None = Field(default=None, max_length=128)
    lead: str | None = Field(default=None, max_length=128)
    started_at: AwareTimestamp | None = Field(
        default=None, description="defaults to the first anomalous sample of the linked alerts"
    )
    detected_at: AwareTimestamp | None = Field(default=None, description="defaults to now")
    acknowledged_at: AwareTimestamp | None = None
    source: str = Field(default="api", max_length=32)
    source_ref: str | None = Field(default=None, max_length=128)
    release_id: str | None = Field(default=None, max_length=64)
    rolled_back_at: AwareTimestamp | None = None
    alert_ids: list[DbId] = Field(default=[], max_length=1000)
    # Attach to an open incident of the same service instead of opening a duplicate.
    attach: bool = True

    @model_validator(mode="before")
    @classmethod
    def _fit_automatic_title(cls, data: Any) -> Any:
        if (
            isinstance(data, dict)
            and data.get("source") in AUTOMATIC_SOURCES
            and isinstance(data.get("title"), str)
        ):
            return {**data, "title": fit_title(data["title"])}
        return data

    @field_validator("service")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value.strip()

    @field_validator("title", mode="before")
    @classmethod
    def _title(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        if not value.strip():
            raise ValueError("must not be blank")
        return _title_fits(value.strip())

    @model_validator(mode="after")
    def _other_needs_reason(self) -> IncidentIn:
        if self.incident_class == IncidentClass.other and not (self.class_reason or "").strip():
            raise ValueError("class_reason: required when incident_class is 'other'")
        return self


def _unclearable(schema: dict[str, Any]) -> None:
    """The schema of a field that may be left out but not cleared (``_not_null``
    refuses null): its type without the null."""
    options = schema.pop("anyOf", None)
    if options:
        schema.update(next(o for o in options if o.get("type") != "null"))


def _unclearable_title(schema: dict[str, Any]) -> None:
    _unclearable(schema)
    schema["pattern"] = _TRIMMED_TITLE


# Unicode's white space (what the schema's regular expressions call \s), which
# a person's new title is trimmed of: 3 to 79 characters are left.
WHITE_SPACE = (
    "\t\n\v\f\r \x85\xa0\u1680"
    + "".join(map(chr, range(0x2000, 0x200B)))
    + ("\u2028\u2029\u202f\u205f\u3000")
)
_TRIMMED_TITLE = (
    f"^[{WHITE_SPACE}]*[^{WHITE_SPACE}][\\s\\S]{{1,{MAX_TITLE_CHARS - 2}}}"
    f"[^{WHITE_SPACE}][{WHITE_SPACE}]*$"
)


class IncidentPatch(BaseModel):
    # A person's title: kept from then on, however the incident grows.
    title: str | None = Field(default=None, json_schema_extra=_unclearable_title)
    severity: Severity | None = Field(default=None, json_schema_extra=_unclearable)
    service: str | None = Field(
        default=None, min_length=1, max_length=128, json_schema_extra=_unclearable
    )
    incident_class: IncidentClass | None = Field(default=None, json_schema_extra=_unclearable)
    class_reason: str | None = Field(default=None, max_length=4000)
    on_call: str | None = Field(default=None, max_length=128)
    lead: str | None = Field(default=None, max_length=128)
    started_at: AwareTimestamp | None = Field(default=None, json_schema_extra=_unclearable)
    detected_at: AwareTimestamp | None = Field(default=None, json_schema_extra=_unclearable)
    release_id: str | None = Field(default=None, max_length=64)
    rolled_back_at: AwareTimestamp | None = None

    _required = field_validator(
        "title", "severity", "service", "incident_class", "started_at", "detected_at"
    )(_not_null)

    @field_validator("title", mode="before")
    @classmethod
    def _title(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip(WHITE_SPACE)
            if len(value) < 3:
                raise ValueError("must have at least 3 characters")
            return _title_fits(value)
        return value


class TransitionIn(BaseModel):
    status: IncidentStatus | None = None
    acknowledge: bool = False
    at: AwareTimestamp | None = None
    note: str | None = Field(default=None, max_length=4000)


class ActionIn(BaseModel):
    # The schema says what _signal_for_detective refuses: a signal (a non-empty
    # one) goes only with a detective action.
    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"properties": {"kind": {"const": ActionKind.detective.value}}},
                {"properties": {"signal": {"anyOf": [{"type": "null"}, {"maxLength": 0}]}}},
            ]
        }
    )

    title: str = Field(min_length=3, max_length=1000)
    kind: ActionKind
    owner: str = Field(min_length=1, max_length=128)
    due_date: Day
    category: ActionCategory | None = None
    status: ActionStatus = ActionStatus.open
    signal: str | None = Field(default=None, max_length=128)
    series: str | None = Field(default=None, max_length=255)

    @model_validator(mode="after")
    def _signal_for_detective(self) -> ActionIn:
        if self.signal and self.kind != ActionKind.detective:
            raise ValueError("signal: only detective actions are linked to a sentinel signal")
        return self


class ActionPatch(BaseModel):
    title: str | None = Field(
        default=None, min_length=3, max_length=1000, json_schema_extra=_unclearable
    )
    owner: str | None = Field(
        default=None, min_length=1, max_length=128, json_schema_extra=_unclearable
    )
    due_date: Day | None = Field(default=None, json_schema_extra=_unclearable)
    status: ActionStatus | None = Field(default=None, json_schema_extra=_unclearable)
    category: ActionCategory | None = None
    signal: str | None = Field(default=None, max_length=128)
    series: str | None = Field(default=None, max_length=255)

    _required = field_validator("title", "owner", "due_date", "status")(_not_null)


class TimelineIn(BaseModel):
    at: AwareTimestamp
    text: str = Field(min_length=1, max_length=10000)
    kind: str = Field(default="note", max_length=32)


class SlaOut(BaseModel):
    targets: str = ""
    response_due: datetime | None = None
    resolution_due: datetime | None = None
    response_breached: bool = False
    resolution_breached: bool = False


class IncidentOut(BaseModel):
    id: int
    title: str
    # Who wrote the title (None: made by the platform from what the incident holds).
    title_author: str | None
    severity: str
    status: str
    service: str
    incident_class: str
    class_reason: str | None
    on_call: str | None
    lead: str | None
    source: str
    source_ref: str | None
    release_id: str | None
    rolled_back_at: datetime | None
    started_at: datetime
    detected_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    mitigated_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    created_at: datetime
    updated_at: datetime
    passive_seconds: float | None
    active_seconds: float | None
    sla: SlaOut
    postmortem_due: datetime | None
    postmortem_complete: bool
    alert_ids: list[int]

    @classmethod
    def of(cls, i: Incident, timing: Timing, now: datetime) -> IncidentOut:
        passive, active = timing.phases(i.started_at, i.detected_at, i.resolved_at, now)
        sla = timing.sla(i.severity, i.detected_at, i.acknowledged_at, i.resolved_at, now)
        return cls(
            id=i.id,
            title=i.title,
            title_author=i.title_author,
            severity=i.severity.value,
            status=i.status.value,
            service=i.service,
            incident_class=i.incident_class.value,
            class_reason=i.class_reason,
            on_call=i.on_call,
            lead=i.lead,
            source=i.source,
            source_ref=i.source_ref,
            release_id=i.release_id,
            rolled_back_at=i.rolled_back_at,
            started_at=i.started_at,
            detected_at=i.detected_at,
            acknowledged_at=i.acknowledged_at,
            acknowledged_by=i.acknowledged_by,
            mitigated_at=i.mitigated_at,
            resolved_at=i.resolved_at,
            closed_at=i.closed_at,
            created_at=i.created_at,
            updated_at=i.updated_at,
            passive_seconds=_seconds(passive),
            active_seconds=_seconds(active),
            sla=sla,
            postmortem_due=timing.postmortem_due(i.severity, i.resolved_at),
            postmortem_complete=bool(i.postmortem and i.postmortem.complete),
            alert_ids=[a.alert_id for a in i.alerts],
        )


def _seconds(delta: timedelta | None) -> float | None:
    return None if delta is None else delta.total_seconds()


class PostmortemOut(BaseModel):
    root_cause: str | None
    resolution: str | None
    business_impact: str | None
    conclusions: str | None
    release_id: str | None
    rolled_back_at: datetime | None
    dependency: str | None
    lessons: list[dict[str, str]]
    complete: bool
    submitted_by: str | None
    submitted_at: datetime | None
    updated_at: datetime

    @classmethod
    def of(cls, p: Postmortem) -> PostmortemOut:
        return cls.model_validate(p, from_attributes=True)


class ActionOut(BaseModel):
    id: int
    incident_id: int
    title: str
    kind: str
    category: str | None
    owner: str
    due_date: date
    status: str
    signal: str | None
    series: str | None
    replay: dict[str, Any] | None
    created_at: datetime
    done_at: datetime | None

    @classmethod
    def of(cls, a: ActionItem) -> ActionOut:
        return cls.model_validate(a, from_attributes=True)


class TimelineOut(BaseModel):
    id: int
    at: datetime
    kind: str
    text: str
    ref: str | None
    suspect: bool
    origin: str
    author: str | None

    @classmethod
    def of(cls, t: TimelineEntry) -> TimelineOut:
        return cls.model_validate(t, from_attributes=True)


class LinkedAlertOut(BaseModel):
    alert_id: int
    signal: str
    series: str | None = None
    labels: dict[str, str] | None = None
    group_id: int | None = None
    severity: str
    summary: str
    started_at: datetime
    firing_at: datetime | None

    @classmethod
    def of(cls, a: IncidentAlert) -> LinkedAlertOut:
        return cls.model_validate(a, from_attributes=True)


class IncidentDetail(IncidentOut):
    postmortem: PostmortemOut | None
    actions: list[ActionOut]
    timeline: list[TimelineOut]
    alerts: list[LinkedAlertOut]
    # What still stands between this incident and closing it (empty: it can close).
    close_problems: list[FieldError]


class OpenResult(BaseModel):
    incident: IncidentDetail
    created: bool  # False: attached to an open incident of the same service
