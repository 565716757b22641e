"""``GET /api/health`` of ``release-gate serve``: healthy only when the
database answers and no release is left in flight by a gate that stopped
beating (its canary may still run the new version). Degraded answers 503 with
the reason, so a load balancer and an engineer read the same thing."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from release_gate.models import IN_FLIGHT, Release
from release_gate.recovery import silent_releases

if TYPE_CHECKING:
    from release_gate.service import ReleaseGate


def gate_health(gate: ReleaseGate) -> tuple[dict[str, Any], int]:
    """The health body and its HTTP status (200 healthy, 503 degraded)."""
    checks: dict[str, Any] = {}
    problems: list[str] = []
    try:
        with gate.db.sessions() as session:
            in_flight = session.scalar(
                select(func.count()).select_from(Release).where(Release.status.in_(IN_FLIGHT))
            )
        silent = silent_releases(gate)
    except SQLAlchemyError as exc:
        checks["database"] = {"status": "error", "error": type(exc).__name__}
        problems.append(f"the gate's database does not answer ({type(exc).__name__})")
    else:
        checks["database"] = {"status": "ok"}
        checks["releases"] = {
            "status": "error" if silent else "ok",
            "in_flight": in_flight,
            "stale": [
                {
                    "release_id": r.id,
                    "service": r.service,
                    "version": r.version,
                    "status": r.status.value,
                    "owner": r.owner,
                    "silent_seconds": None if age is None else round(age, 1),
                }
                for r, age in silent
            ],
        }
        for r, age in silent:
            who = (
                f"its gate {r.owner} has not beaten for {age:.0f} s"
                if age is not None
                else "nobody owns it (its recovery failed)"
            )
            problems.append(
                f"release {r.id} ({r.service} {r.version}) is left {r.status.value}: {who}; "
                "run `release-gate recover`"
            )
    healthy = not problems
    body = {
        "status": "healthy" if healthy else "degraded",
        "reason": "; ".join(problems) or None,
        "checks": checks,
    }
    return body, 200 if healthy else 503
