"""Report a bad release to postmortems (contract 3: ``POST {postmortems}/api/
incidents`` with ``incident_class: bad_release``), so every rollback leaves an
incident to write up. Without a postmortems URL nothing is sent and the
receipt says so; a failure is recorded, never fatal: the rollback already
happened."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx

from common.logs import get_logger
from release_gate.peers import bearer, error_text

log = get_logger(__name__)


class IncidentReporter:
    def __init__(
        self,
        *,
        postmortems_url: str | None,
        token: str | None = None,
        timeout: float = 5.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = f"{postmortems_url.rstrip('/')}/api/incidents" if postmortems_url else None
        self.token = token
        self.timeout = timeout
        self.transport = transport

    def bad_release(
        self,
        *,
        release_id: int,
        service: str,
        version: str,
        author: str,
        reason: str,
        started_at: datetime | None,
        rolled_back_at: datetime | None,
        severity: str = "P2",
    ) -> dict[str, Any]:
        """What happened, for the receipt: the incident, or why there is none."""
        if self.url is None:
            return {"sent": False, "reason": "GATE_POSTMORTEMS_URL is not set"}
        body: dict[str, Any] = {
            "title": f"Bad release: {service} {version} by {author} rolled back ({reason})",
            "severity": severity,
            "service": service,
            "incident_class": "bad_release",
            "source": "release_gate",
            "source_ref": f"release:{release_id}",
            "release_id": str(release_id),
        }
        if started_at is not None:
            body["started_at"] = started_at.isoformat()
        if rolled_back_at is not None:
            body["rolled_back_at"] = rolled_back_at.isoformat()
        try:
            with httpx.Client(timeout=self.timeout, transport=self.transport) as client:
                response = client.post(self.url, json=body, headers=bearer(self.token))
                response.raise_for_status()
                incident = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            error = f"postmortems at {self.url}: {error_text(exc)}"
            log.warning("incident.report_failed", release_id=release_id, error=error)
            return {"sent": False, "error": error}
        log.info("incident.reported", release_id=release_id, incident_id=incident.get("id"))
        return {"sent": True, "incident": incident}
