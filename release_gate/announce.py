"""Release announcements (seed 003 §1.3): before, during and after every
release, through the sentinel's announcement channels (contract: ``POST
{sentinel}/api/announcements``; one key per release, so Slack updates one
message in place). Without a sentinel URL, or when it cannot be reached, the
announcement goes to stderr instead; either way it is stored with the release.
An announcement never fails a release."""

from __future__ import annotations

import sys
from datetime import datetime
from typing import IO, Any, Literal

import httpx
from pydantic import BaseModel

from common.clock import Clock
from common.logs import get_logger
from release_gate.peers import bearer, error_text

log = get_logger(__name__)

Severity = Literal["info", "warning", "critical"]


class AnnouncementRecord(BaseModel):
    key: str
    state: str
    title: str
    text: str
    severity: Severity
    at: datetime
    channel: Literal["sentinel", "stderr"]
    notifications: int | None = None
    error: str | None = None


class Announcer:
    def __init__(
        self,
        clock: Clock,
        *,
        sentinel_url: str | None = None,
        token: str | None = None,
        timeout: float = 5.0,
        transport: httpx.BaseTransport | None = None,
        stream: IO[str] | None = None,
    ) -> None:
        self.clock = clock
        self.url = f"{sentinel_url.rstrip('/')}/api/announcements" if sentinel_url else None
        self.token = token
        self.timeout = timeout
        self.transport = transport
        self.stream = stream

    def announce(
        self,
        *,
        key: str,
        state: str,
        title: str,
        text: str,
        severity: Severity = "info",
        labels: dict[str, str] | None = None,
    ) -> AnnouncementRecord:
        record = AnnouncementRecord(
            key=key,
            state=state,
            title=title,
            text=text,
            severity=severity,
            at=self.clock.now(),
            channel="sentinel" if self.url else "stderr",
        )
        if self.url is not None:
            body: dict[str, Any] = {
                "key": key,
                "title": title,
                "text": text,
                "state": state,
                "severity": severity,
                "labels": labels or {},
            }
            try:
                with httpx.Client(timeout=self.timeout, transport=self.transport) as client:
                    response = client.post(self.url, json=body, headers=bearer(self.token))
                    response.raise_for_status()
                    record.notifications = int(response.json().get("notifications", 0))
            except (httpx.HTTPError, ValueError, AttributeError) as exc:
                record.channel = "stderr"
                record.error = f"sentinel at {self.url}: {error_text(exc)}"
                log.warning("announcement.failed", key=key, state=state, error=record.error)
        if record.channel == "stderr":
            stream = self.stream or sys.stderr
            print(f"[announce {state}] {title}: {text}", file=stream, flush=True)
        log.info("announcement.sent", key=key, state=state, channel=record.channel)
        return record
