"""``GET /api/health`` of ``postmortem serve``: healthy only when its database
answers and, when it watches, its watcher loop got through a whole pass
recently (a watcher that cannot read the sentinel opens no incident). Degraded
answers 503 with the reason."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from postmortems.models import OPEN_STATUSES, Incident

if TYPE_CHECKING:
    from postmortems.app import Background
    from postmortems.service import Postmortems


def stale_after(interval: float) -> float:
    """Seconds without a whole pass before the watcher counts as stuck: three
    missed passes, and never under half a minute (a pass may be slow)."""
    return max(3 * interval, 30.0)


def postmortems_health(
    service: Postmortems, background: Background | None
) -> tuple[dict[str, Any], int]:
    checks: dict[str, Any] = {}
    problems: list[str] = []
    body: dict[str, Any] = {}
    try:
        with service.db.session() as s:
            body["open_incidents"] = s.scalar(
                select(func.count()).select_from(Incident).where(Incident.status.in_(OPEN_STATUSES))
            )
        checks["database"] = {"status": "ok"}
    except SQLAlchemyError as exc:
        checks["database"] = {"status": "error", "error": type(exc).__name__}
        problems.append(f"the postmortems database does not answer ({type(exc).__name__})")
    if background is None:
        checks["watcher"] = {"status": "off"}  # served with --no-watch
    else:
        limit = stale_after(background.interval)
        since = background.last_success
        age = background.monotonic() - (since if since is not None else background.started)
        stuck = age > limit
        last_at = background.last_success_at
        checks["watcher"] = {
            "status": "error" if stuck else "ok",
            "last_success_at": last_at.isoformat() if last_at else None,
            "seconds_since": round(age, 1),
            "last_error": background.last_error,
        }
        if stuck:
            reason = (
                f"watcher: no pass has succeeded in the {age:.0f} s since start"
                if since is None
                else f"watcher: the last successful pass was {age:.0f} s ago"
            )
            reason += f" (limit {limit:.0f} s)"
            if background.last_error:
                reason += f"; last error: {background.last_error}"
            problems.append(reason)
    healthy = not problems
    body = {
        "status": "healthy" if healthy else "degraded",
        "reason": "; ".join(problems) or None,
        **body,
        "checks": checks,
    }
    return body, 200 if healthy else 503
