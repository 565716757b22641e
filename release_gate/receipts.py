"""The receipt of one ``release-gate deploy``: what CI reads on stdout (or
from ``--receipt FILE``) and the HTTP API returns. It is built from the
release's row, so a release recovered after a kill has the same receipt."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from release_gate.models import Release, ReleaseStatus

EXIT_PROMOTED = 0
EXIT_ROLLED_BACK = 1
EXIT_REFUSED = 2
EXIT_INCONCLUSIVE = 3
EXIT_INFRASTRUCTURE = 4


class StepOut(BaseModel):
    step: str
    at: datetime
    detail: dict[str, Any]


class Receipt(BaseModel):
    release_id: int
    service: str
    version: str
    previous_version: str | None
    author: str
    status: str
    decision: str | None
    exit_code: int | None  # None while the release is in flight
    summary: str
    override_reason: str | None
    started_at: datetime
    canary_started_at: datetime | None
    decided_at: datetime | None
    finished_at: datetime | None
    rolled_back_at: datetime | None
    # The lock found (holder, until, exemption), freezes, incident/alert guards.
    admission: dict[str, Any]
    refusal: dict[str, Any] | None
    canary_node: dict[str, Any] | None
    verdict: dict[str, Any] | None
    # The judge's input as read (replay with `release-gate judge --input`).
    samples: dict[str, Any] | None
    announcements: list[dict[str, Any]]
    incident: dict[str, Any] | None
    error: str | None
    steps: list[StepOut]

    @classmethod
    def of(cls, release: Release) -> Receipt:
        return cls(
            release_id=release.id,
            service=release.service,
            version=release.version,
            previous_version=release.previous_version,
            author=release.author,
            status=release.status.value,
            decision=release.decision,
            exit_code=release.exit_code,
            summary=summarize(release),
            override_reason=release.override_reason,
            started_at=release.started_at,
            canary_started_at=release.canary_started_at,
            decided_at=release.decided_at,
            finished_at=release.finished_at,
            rolled_back_at=release.rolled_back_at,
            admission=release.admission or {},
            refusal=release.refusal,
            canary_node=release.canary_node,
            verdict=release.verdict,
            samples=release.samples,
            announcements=list(release.announcements or []),
            incident=release.incident,
            error=release.error,
            steps=[StepOut(step=s.step, at=s.at, detail=s.detail or {}) for s in release.steps],
        )


def _elapsed(release: Release) -> str:
    if release.canary_started_at is None:
        return ""
    end = release.decided_at or release.finished_at
    if end is None:
        return ""
    return f" after {(end - release.canary_started_at).total_seconds():.0f} s of canary"


def _verdict_reason(release: Release) -> str:
    # Without its closing period: the summary adds its own.
    return str((release.verdict or {}).get("reason") or "").rstrip(".")


def summarize(release: Release) -> str:
    """One paragraph for a human reading CI's log."""
    head = f"release {release.id}: {release.service} {release.version} by {release.author}"
    if release.previous_version:
        head += f" (production on {release.previous_version})"
    status = release.status
    override = f" Override: {release.override_reason}." if release.override_reason else ""
    if status == ReleaseStatus.refused:
        reasons = "; ".join((release.refusal or {}).get("reasons", []))
        hint = (release.refusal or {}).get("hint", "")
        return f"{head}: REFUSED, nothing deployed. {reasons}.{(' ' + hint) if hint else ''}"
    if status == ReleaseStatus.promoted:
        return f"{head}: PROMOTED{_elapsed(release)}. {_verdict_reason(release)}.{override}"
    if status == ReleaseStatus.rolled_back:
        incident = release.incident or {}
        opened = ""
        if incident.get("sent"):
            opened = f" Incident {incident.get('incident', {}).get('id')} opened."
        return (
            f"{head}: ROLLED BACK to {release.previous_version or 'the previous version'}"
            f"{_elapsed(release)}. {_verdict_reason(release)}.{opened}{override}"
        )
    if status == ReleaseStatus.inconclusive:
        return (
            f"{head}: INCONCLUSIVE{_elapsed(release)}, canary put back on "
            f"{release.previous_version or 'the previous version'}. "
            f"{_verdict_reason(release)}.{override}"
        )
    if status == ReleaseStatus.failed:
        return f"{head}: FAILED (infrastructure), old version left in place. {release.error}"
    if status == ReleaseStatus.aborted:
        return f"{head}: ABORTED, the gate stopped mid-release; {release.error or ''}"
    return f"{head}: in progress ({status.value})."
