"""An Alertmanager configuration that sends every alert to the sentinel's webhook
receiver (``POST /api/alertmanager/webhook``, payload version 4), so Prometheus'
alerts go through the same routes, schedules, escalation and pages as the
sentinel's own. A complete file (``amtool check-config`` passes on it): use it as
is, or copy its receiver and route into an existing ``alertmanager.yml``."""

from __future__ import annotations

from typing import Any

RECEIVER = "vigil-sentinel"
WEBHOOK_PATH = "/api/alertmanager/webhook"


def alertmanager_config(sentinel_url: str, token_file: str | None = None) -> dict[str, Any]:
    """``token_file``: a file holding the sentinel's ``SENTINEL_API_TOKEN``; the sentinel
    answers 403 without it when a token is set."""
    webhook: dict[str, Any] = {
        "url": sentinel_url.rstrip("/") + WEBHOOK_PATH,
        "send_resolved": True,  # the sentinel resolves the alert and tells whoever was paged
        "max_alerts": 0,
    }
    if token_file:
        webhook["http_config"] = {
            "authorization": {"type": "Bearer", "credentials_file": token_file}
        }
    return {
        "route": {
            "receiver": RECEIVER,
            # The sentinel groups, waits and repeats by its own policies: pass alerts on
            # at once and let it decide.
            "group_by": ["..."],
            "group_wait": "0s",
            "group_interval": "1m",
            "repeat_interval": "4h",
        },
        "receivers": [{"name": RECEIVER, "webhook_configs": [webhook]}],
    }
