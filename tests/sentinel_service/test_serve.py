"""``sentinel serve`` as an operator runs it, watching a live translator."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import httpx

from tests.identity import ADMIN_HEADERS, ADMIN_TOKEN
from tests.sources.conftest import closed_port

CATALOGUE = """
signals:
  - name: http.requests
    description: request rate of the translator
    kind: level
    interval_seconds: 1
    labels: {team: platform, service: translator}
    source: {type: scrape, function: rate, selector: translator_http_requests_total}
  - name: payments.attempts
    description: payment attempts, last 10 minutes
    kind: count
    interval_seconds: 1
    labels: {team: payments, service: translator}
    source:
      type: sql
      window_seconds: 600
      query: SELECT COUNT(*) AS value FROM payments WHERE created_at >= :start AND created_at < :end
"""


def _wait(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = predicate()
        except httpx.HTTPError:
            result = None
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def test_serve_evaluates_a_live_translator(translator_node, sentinel_url, database_url, tmp_path):
    catalogue = tmp_path / "signals.yaml"
    catalogue.write_text(CATALOGUE)
    port = closed_port()
    with translator_node() as node:
        env = {
            **os.environ,
            "SENTINEL_DATABASE_URL": sentinel_url,
            "SENTINEL_TRANSLATOR_DATABASE_URL": database_url,
            "SENTINEL_CATALOGUE": str(catalogue),
            "SENTINEL_SCRAPE_TARGETS": json.dumps([node.metrics_url]),
            "SENTINEL_TICK_SECONDS": "0.2",
        }
        proc = subprocess.Popen(
            [sys.executable, "-m", "sentinel.cli", "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            _wait(lambda: httpx.get(f"{base}/api/health").json()["leader"])
            for _ in range(5):
                node.get("/api/jobs")

            def both_have_values():
                signals = httpx.get(f"{base}/api/signals", headers=ADMIN_HEADERS).json()
                values = {s["name"]: [x["last_value"] for x in s["series"]] for s in signals}
                ok = values["payments.attempts"] == [0] and any(
                    v is not None and v > 0 for v in values["http.requests"]
                )
                return values if ok else None

            _wait(both_have_values)
            assert httpx.get(f"{base}/api/alerts").status_code == 401
            assert httpx.get(f"{base}/api/alerts", headers=ADMIN_HEADERS).status_code == 200
            assert "sentinel_leader 1.0" in httpx.get(f"{base}/metrics").text
        finally:
            proc.send_signal(signal.SIGTERM)
            output, _ = proc.communicate(timeout=30)
    assert proc.returncode in (0, -signal.SIGTERM), output
    assert "sentinel.leadership_taken" in output
    assert ADMIN_TOKEN not in output  # the admin's token came from the environment: not echoed
