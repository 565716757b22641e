"""The faults the demo injects into its translator, and the alert each one must
raise. They start when the story reaches them (demo/story.py), not at a fixed
time: the translator watches its faults file (translator/faults.py), and the
demo writes it then. Starting them after the release chapter matters: the gate
refuses a release while a critical alert fires, as it should."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Fault:
    what: str  # what a newcomer reads when it starts
    kind: str  # the translator's ``event=fault.injected kind=...``
    target: str  # the ``key=value`` of that log line that names this fault
    signal: str  # the alert it must raise ...
    series: str  # ... on this series (sentinel's series key)
    config: dict[str, Any]  # its part of the translator's fault configuration
    also_raises: tuple[str, ...] = ()  # other signals that see the same fault


FAULTS = (
    Fault(
        what="wallet payments start failing (90% declined)",
        kind="payment_failure",
        target="method=wallet",
        signal="payments.failed",
        series='method="wallet"',
        config={
            "payment_failures": [{"method": "wallet", "rate": 0.9, "reason": "wallet_declined"}]
        },
        also_raises=("payments.failed_ratio",),
    ),
    Fault(
        what="/api/jobs starts answering 500 to 40% of requests",
        kind="http_error",
        target="route=/api/jobs",
        signal="http.error_ratio_by_route",
        series='route="/api/jobs"',
        config={"http_errors": [{"route": "/api/jobs", "rate": 0.4}]},
        also_raises=("http.error_ratio",),  # the service's overall 5xx ratio
    ),
    Fault(
        what="bob's job list starts coming back empty",
        kind="empty_job_list",
        target="user=bob@example.com",
        signal="jobs.empty_list_users",
        series='user_id="3"',
        config={"empty_job_list": {"users": ["bob@example.com"]}},
        also_raises=("jobs.empty_list_share",),  # bob's share of all job lists
    ),
)


def fault_config() -> dict[str, Any]:
    config: dict[str, Any] = {}
    for fault in FAULTS:
        config.update(fault.config)
    return config


def no_faults(path: Path) -> None:
    """The translator starts healthy, watching ``path`` for its faults."""
    _write(path, {})


def start_faults(path: Path) -> None:
    _write(path, fault_config())


def _write(path: Path, config: dict[str, Any]) -> None:
    """Replace the file in one step (JSON is YAML): the translator never reads half
    of it."""
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(config), encoding="utf-8")
    os.replace(partial, path)
