"""``GET /api/health``: healthy only when the database answers, workers run
and the default provider's breaker is not open. Degraded answers 503 with
the detail, so a load balancer and an engineer read the same thing."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from translator import __version__
from translator.deps import ServicesDep
from translator.metrics import queue_snapshot

router = APIRouter(tags=["health"])


@router.get("/api/health", responses={503: {"description": "degraded, with the failing checks"}})
def health(services: ServicesDep) -> JSONResponse:
    checks: dict[str, dict] = {}
    healthy = True
    try:
        with services.db.session() as s:
            s.execute(text("SELECT 1"))
        checks["database"] = {"status": "ok"}
        snap = queue_snapshot(services.db, services.clock.now())
        checks["queue"] = {
            "status": "ok",
            "depth": snap["queued"],
            "processing": snap["processing"],
            "oldest_pending_age_seconds": round(snap["oldest_age_seconds"], 1),
        }
    except Exception as exc:
        healthy = False
        checks["database"] = {"status": "error", "error": type(exc).__name__}
    workers = services.workers
    if workers.running:
        alive = workers.alive
        checks["workers"] = {
            "status": "ok" if alive == workers.size else "error",
            "alive": alive,
            "configured": workers.size,
        }
        healthy &= alive == workers.size
    breakers = services.providers.breaker_states()
    default = services.providers.default
    checks["providers"] = {
        "status": "ok" if breakers.get(default) != "open" else "error",
        "default": default,
        "breakers": breakers,
    }
    healthy &= breakers.get(default) != "open"
    body = {
        "status": "healthy" if healthy else "degraded",
        "version": services.settings.version or __version__,
        "node": services.settings.node,
        "checks": checks,
    }
    return JSONResponse(body, status_code=200 if healthy else 503)
