"""The incident freeze (seed 003 §1.4): no release while an incident of the
service is open (postmortems) or a critical alert fires (sentinel). Both are
asked over HTTP. A peer whose URL is unset is skipped, and the receipt says
so; a peer that is configured but cannot answer refuses the release (exit 4)
unless overridden, because "could not check" is not "all clear"."""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import BaseModel

from common.logs import get_logger
from release_gate.peers import bearer

log = get_logger(__name__)

CRITICAL_SEVERITIES = ("P0", "P1")


class GuardReport(BaseModel):
    """What the guards found for one service."""

    incidents: list[dict[str, Any]] = []
    critical_alerts: list[dict[str, Any]] = []
    skipped: list[str] = []  # "incidents: GATE_POSTMORTEMS_URL not set"
    unreachable: list[str] = []  # "sentinel at http://...: connection refused"

    @staticmethod
    def incident_reason(i: dict[str, Any]) -> str:
        return (
            f"incident {i.get('id')} open ({i.get('severity', '?')}, {i.get('status', '?')}): "
            f"{i.get('title', '')}"
        )

    @staticmethod
    def alert_reason(a: dict[str, Any]) -> str:
        return (
            f"critical alert {a.get('id')} firing ({a.get('severity')}): {a.get('signal')} "
            f"{a.get('labels', {})}"
        )


def is_critical(alert: dict[str, Any], service: str) -> bool:
    """Firing P0/P1 of this service. An alert without a ``service`` label
    concerns the whole platform and blocks every service."""
    if alert.get("state") != "firing" or alert.get("severity") not in CRITICAL_SEVERITIES:
        return False
    labels = alert.get("labels") or {}
    return labels.get("service") in (None, service)


class Guards:
    def __init__(
        self,
        *,
        sentinel_url: str | None,
        postmortems_url: str | None,
        sentinel_token: str | None = None,
        postmortems_token: str | None = None,
        timeout: float = 5.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.sentinel_url = sentinel_url.rstrip("/") if sentinel_url else None
        self.postmortems_url = postmortems_url.rstrip("/") if postmortems_url else None
        self.sentinel_token = sentinel_token
        self.postmortems_token = postmortems_token
        self.timeout = timeout
        self.transport = transport

    def _get(self, url: str, params: dict[str, str], token: str | None) -> Any:
        with httpx.Client(timeout=self.timeout, transport=self.transport) as client:
            response = client.get(url, params=params, headers=bearer(token))
            response.raise_for_status()
            return response.json()

    def check(self, service: str) -> GuardReport:
        report = GuardReport()
        if self.postmortems_url is None:
            report.skipped.append("open incidents: GATE_POSTMORTEMS_URL is not set")
        else:
            url = f"{self.postmortems_url}/api/incidents"
            try:
                incidents = self._get(
                    url, {"service": service, "open": "true"}, self.postmortems_token
                )
                report.incidents = [
                    i for i in _as_list(incidents, url) if i.get("service") in (None, service)
                ]
            except (httpx.HTTPError, ValueError) as exc:
                report.unreachable.append(f"postmortems at {url}: {_describe(exc)}")
        if self.sentinel_url is None:
            report.skipped.append("critical alerts: GATE_SENTINEL_URL is not set")
        else:
            url = f"{self.sentinel_url}/api/alerts"
            try:
                alerts = self._get(url, {"active": "true"}, self.sentinel_token)
                report.critical_alerts = [
                    a for a in _as_list(alerts, url) if is_critical(a, service)
                ]
            except (httpx.HTTPError, ValueError) as exc:
                report.unreachable.append(f"sentinel at {url}: {_describe(exc)}")
        log.info(
            "guards.checked",
            service=service,
            incidents=len(report.incidents),
            critical_alerts=len(report.critical_alerts),
            skipped=len(report.skipped),
            unreachable=len(report.unreachable),
        )
        return report


def _as_list(payload: Any, url: str) -> list[dict[str, Any]]:
    if not isinstance(payload, list) or not all(isinstance(x, dict) for x in payload):
        raise ValueError(f"{url} did not answer a JSON list of objects")
    return payload


def _describe(exc: Exception) -> str:
    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTP {exc.response.status_code}"
    return str(exc) or type(exc).__name__
