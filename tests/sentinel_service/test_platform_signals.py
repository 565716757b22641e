"""The default catalogue's host, latency, log and file signals end to end: a
real translator (its /metrics, its log file, its storage directory), a real
node exporter, and the sentinel's evaluation cycle on an injected clock. Each
fault fires its own signal, and the alert names the series."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from common.clock import FakeClock
from common.logs import get_logger
from sentinel.api import create_app
from sentinel.catalogue import Catalogue, load_catalogue
from sentinel.detectors.spec import DetectorSpec
from sentinel.service import build_sentinel
from sentinel.settings import DEFAULT_CATALOGUE, SentinelSettings
from tests.node_exporter_server import node_exporter
from tests.sources.test_log_source import lose_translation
from tests.test_translator_file_check import wait_for_check

SIGNALS = (
    "host.cpu_busy_ratio",
    "host.memory_used_ratio",
    "host.disk_used_ratio",
    "http.latency_p95_by_route",
    "logs.critical_lines",
    "logs.error_lines",
    "files.missing",
    "files.orphaned",
)
HOST = ("host.cpu_busy_ratio", "host.memory_used_ratio", "host.disk_used_ratio")


@pytest.fixture
def clock() -> FakeClock:
    # Log lines and file ages carry the OS clock's time; start the injected one there.
    return FakeClock(datetime.now(UTC))


def _catalogue(disk_threshold: float) -> Catalogue:
    """The shipped signals; the disk threshold lowered so this machine's disk crosses it
    (a test cannot fill a disk to 90%)."""
    shipped = load_catalogue(DEFAULT_CATALOGUE)
    signals = []
    for name in SIGNALS:
        spec = shipped.get(name)
        if name == "host.disk_used_ratio":
            detector = DetectorSpec.model_validate(
                {"kind": "static", "params": {"threshold": disk_threshold, "direction": "above"}}
            )
            spec = spec.model_copy(update={"detector": detector})
        signals.append(spec)
    return Catalogue(signals=signals)


def _orphan(storage: Path) -> Path:
    path = storage / "2026" / "01" / "left-behind.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"no row names me")
    hour_ago = time.time() - 3600
    os.utime(path, (hour_ago, hour_ago))
    return path


def test_each_fault_fires_its_own_signal_naming_the_series(
    translator_node, translator_log, sentinel_url, database_url, clock, tmp_path
):
    with node_exporter() as exporter, translator_node() as node:
        settings = SentinelSettings(
            database_url=sentinel_url,
            translator_database_url=database_url,
            scrape_targets=[node.metrics_url],
            node_targets=[exporter.metrics_url],
            translator_log_file=translator_log,
            replica="replica-a",
        )
        sentinel = build_sentinel(
            settings, clock=clock, catalogue=_catalogue(disk_threshold=0.0), migrate=False
        )
        try:
            api = TestClient(create_app(sentinel, run_loop=False))
            assert node.get("/api/jobs").status_code == 200
            sentinel.cycle()  # baselines for the rates; nothing is wrong yet
            firing = api.get("/api/alerts", params={"state": "firing"}).json()
            assert {a["signal"] for a in firing} <= {"host.disk_used_ratio", "host.cpu_busy_ratio"}

            # The faults: a slow route (no fault makes a route slow, so its histogram is
            # fed 3-second requests; the scrape reads them like any other), error and
            # critical lines, a lost file and an orphan.
            slow = node.services.metrics.http_duration.labels("GET", "/api/jobs")
            for _ in range(20):
                slow.observe(3.0)
            for _ in range(10):
                assert node.get("/api/jobs").status_code == 200  # fast ones too
            file_id = lose_translation(node, tmp_path)
            for _ in range(11):
                assert node.get(f"/api/files/{file_id}/download").status_code == 404
            get_logger("translator.jobs.worker").critical("worker.pool_lost", workers=0)
            _orphan(node.services.settings.storage_dir)
            # The translator re-checks its files after its refresh period, in the background.
            clock.advance(seconds=node.services.settings.files_check_seconds)
            wait_for_check(
                lambda: node.http.get(node.metrics_url).text, {"missing": 1, "orphaned": 1}
            )
            sentinel.cycle()

            firing = api.get("/api/alerts", params={"state": "firing"}).json()
            by_signal = {a["signal"]: a for a in firing}
            instance = node.url.removeprefix("http://")
            assert by_signal["http.latency_p95_by_route"]["labels"]["route"] == "/api/jobs"
            assert (
                "http.latency_p95_by_route{route=/api/jobs} FIRING"
                in (by_signal["http.latency_p95_by_route"]["summary"])
            )
            assert by_signal["logs.error_lines"]["labels"]["level"] == "ERROR"
            assert by_signal["logs.critical_lines"]["labels"]["level"] == "CRITICAL"
            assert by_signal["files.missing"]["labels"]["instance"] == instance
            assert by_signal["files.orphaned"]["labels"]["instance"] == instance
            disk = [a for a in firing if a["signal"] == "host.disk_used_ratio"]
            assert disk and all(
                a["labels"]["instance"] == exporter.url.removeprefix("http://")
                and a["labels"]["mountpoint"].startswith("/")
                for a in disk
            )
            assert "mountpoint=/" in disk[0]["summary"]
            severities = {name: alert["severity"] for name, alert in by_signal.items()}
            assert severities["http.latency_p95_by_route"] == "P1"
            assert severities["logs.critical_lines"] == "P1"
            assert severities["logs.error_lines"] == "P3"
            assert severities["files.missing"] == "P2"
            assert severities["files.orphaned"] == "P3"
            # Every host signal has a value per host (the unlabelled row is the first
            # cycle's "warming up" of the CPU rate).
            for name in HOST:
                series = api.get(f"/api/signals/{name}").json()["series"]
                valued = [s for s in series if s["last_value"] is not None]
                assert valued and all(s["labels"]["instance"] for s in valued), (name, series)
        finally:
            sentinel.close()


def test_the_default_catalogue_watches_hosts_latency_logs_and_files():
    catalogue = load_catalogue(DEFAULT_CATALOGUE)
    expected = {
        "host.cpu_busy_ratio": ("P2", 0.80),
        "host.memory_used_ratio": ("P2", 0.85),
        "host.disk_used_ratio": ("P2", 0.90),
        "http.latency_p95_by_route": ("P1", 2.0),
        "logs.critical_lines": ("P1", 1),
        "logs.error_lines": ("P3", 10),
        "files.missing": ("P2", 1),
        "files.orphaned": ("P3", 1),
    }
    for name, (severity, threshold) in expected.items():
        spec = catalogue.get(name)
        assert spec.detector is not None and spec.detector.kind == "static", name
        assert spec.detector.params["threshold"] == threshold, name
        assert spec.severity == severity, name
        assert {"team", "service"} <= spec.labels.keys() and spec.runbook.strip(), name
    assert catalogue.get("host.disk_used_ratio").source.by == ["instance", "mountpoint"]
    assert catalogue.get("http.latency_p95_by_route").source.by == ["route"]
