"""Builders and readers for tests on the local fleet (real nginx, real nodes)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from release_gate.deployers import Node
from release_gate.deployers.nginx import DEFAULT_BINARY


def require_nginx() -> None:
    """Skip without nginx; under CI a missing nginx is a failure."""
    if Path(DEFAULT_BINARY).exists():
        return
    message = f"nginx not installed at {DEFAULT_BINARY} (Debian package nginx-light)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def fleet_section(database_url: str, **overrides: Any) -> dict[str, Any]:
    """A small fleet for tests: one worker thread per node, quick stops."""
    section: dict[str, Any] = {
        "type": "local_fleet",
        "production_nodes": 2,
        "canary_share": 0.2,
        "database_url": database_url,
        "env": {"TRANSLATOR_WORKERS": "1", "TRANSLATOR_LOG_LEVEL": "WARNING"},
        "stop_timeout_seconds": 10,
        "health_timeout_seconds": 45,
    }
    section.update(overrides)
    return section


def request_counts(node: Node, route: str, method: str = "GET") -> dict[str, float]:
    """The node's own ``translator_http_requests_total`` for one route, by status."""
    text = httpx.get(node.metrics_url, timeout=10).text
    counts: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name != "translator_http_requests":
            continue
        for sample in family.samples:
            labels = sample.labels
            if (
                sample.name.endswith("_total")
                and labels.get("route") == route
                and labels.get("method") == method
            ):
                counts[labels["status"]] = counts.get(labels["status"], 0.0) + sample.value
    return counts


def build_info(node: Node) -> dict[str, str]:
    """The labels of the node's ``translator_build_info`` (version, node, python)."""
    text = httpx.get(node.metrics_url, timeout=10).text
    for family in text_string_to_metric_families(text):
        if family.name == "translator_build_info":
            return dict(family.samples[0].labels)
    raise AssertionError(f"{node.metrics_url} has no translator_build_info")


def delta(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {k: v - before.get(k, 0.0) for k, v in after.items() if v - before.get(k, 0.0)}


def alive(pid: int) -> bool:
    """Running (a zombie has ended; it only waits for its parent)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"
