"""The generated rules and panel queries in a real Prometheus (Debian's package)
scraping a live translator whose /api/jobs fails: the 5xx rule fires for that
route only, with the catalogue's labels, and the panel's query draws the ratio."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from dashboards.export import RULES_FILE
from tests.prometheus_server import prometheus_server, require_prometheus
from tests.sources.conftest import translator_node  # noqa: F401 - the live translator fixture

FAULTS = '{"http_errors": [{"route": "/api/jobs", "rate": 1.0}]}'


def _query(prom_url: str, expr: str) -> list[dict[str, Any]]:
    response = httpx.get(
        f"{prom_url}/api/v1/query", params={"query": expr}, timeout=5, trust_env=False
    )
    response.raise_for_status()
    return response.json()["data"]["result"]


def test_the_route_rule_fires_in_a_real_prometheus(
    translator_node: Any,  # noqa: F811
    exported: Path,
) -> None:
    require_prometheus()
    rules = exported / "prometheus" / RULES_FILE
    with (
        translator_node(faults=FAULTS) as node,
        prometheus_server([node.metrics_url], rule_files=[rules]) as prom,
    ):
        stop = threading.Event()

        def users() -> None:  # jobs lists (all 500) and plans (fine), ten a second
            while not stop.wait(0.1):
                node.get("/api/jobs")
                node.get("/api/plans")

        traffic = threading.Thread(target=users, daemon=True)
        traffic.start()
        try:

            def firing() -> list[dict[str, Any]] | None:
                found = _query(
                    prom.url, 'ALERTS{alertname="HttpErrorRatioByRoute", alertstate="firing"}'
                )
                return found or None

            (alert,) = prom.wait_for(firing, timeout=60, what="HttpErrorRatioByRoute firing")
            panel = (exported / "grafana" / "vigil-translator.json").read_text()
        finally:
            stop.set()
            traffic.join(5)
        labels = alert["metric"]
        assert labels["route"] == "/api/jobs"
        assert labels["severity"] == "P1" and labels["signal"] == "http.error_ratio_by_route"
        assert labels["service"] == "translator" and labels["source"] == "vigil"

        import json

        board = json.loads(panel)
        (by_route,) = [p for p in board["panels"] if p["title"] == "http.error_ratio_by_route"]
        expr = by_route["targets"][0]["expr"].replace("$__rate_interval", "1m")
        ratios = {r["metric"]["route"]: float(r["value"][1]) for r in _query(prom.url, expr)}
        assert ratios["/api/jobs"] == pytest.approx(1.0)
        assert ratios["/api/plans"] == pytest.approx(0.0)
