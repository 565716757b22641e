"""A real Alertmanager for tests: Debian's ``/usr/bin/prometheus-alertmanager``
(apt package ``prometheus-alertmanager``) started on a free loopback port with a
temporary config and storage directory, clustering off, and stopped afterwards.

Without the binary the tests skip with the reason, except under CI (``CI``
set), where they fail."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from tests.prometheus_server import free_port

ALERTMANAGER_BINARY = os.environ.get("ALERTMANAGER_BINARY", "/usr/bin/prometheus-alertmanager")
T = TypeVar("T")


def require_alertmanager() -> str:
    """The binary's path, or skip (fail under CI) with how to get it."""
    if os.path.exists(ALERTMANAGER_BINARY):
        return ALERTMANAGER_BINARY
    path = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if path is None:
        message = (
            f"Alertmanager not installed ({ALERTMANAGER_BINARY} missing): "
            "apt-get install -y prometheus-alertmanager"
        )
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def require_amtool() -> str:
    """amtool (same package), or skip (fail under CI)."""
    path = shutil.which("amtool") or (
        "/usr/bin/amtool" if os.path.exists("/usr/bin/amtool") else None
    )
    if path is None:
        message = "amtool not installed: apt-get install -y prometheus-alertmanager"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@dataclass
class AlertmanagerServer:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def post_alerts(self, alerts: Sequence[Mapping[str, Any]]) -> None:
        """``POST /api/v2/alerts`` as Prometheus does; datetimes become RFC 3339."""
        body = [
            {k: v.isoformat() if isinstance(v, datetime) else v for k, v in alert.items()}
            for alert in alerts
        ]
        response = httpx.post(f"{self.url}/api/v2/alerts", json=body, timeout=5, trust_env=False)
        if response.status_code != 200:
            raise AssertionError(
                f"Alertmanager refused the alerts: {response.status_code} {response.text}"
            )

    def alerts(self) -> list[dict[str, Any]]:
        """What Alertmanager holds now (``GET /api/v2/alerts``)."""
        response = httpx.get(f"{self.url}/api/v2/alerts", timeout=5, trust_env=False)
        response.raise_for_status()
        return response.json()

    def wait_for(self, probe: Callable[[], T | None], timeout: float = 10.0, what: str = "it") -> T:
        """Poll ``probe`` until it returns something truthy (Alertmanager notifies on
        its own timers, so tests wait for it, boundedly)."""
        deadline = time.monotonic() + timeout
        while True:
            result = probe()
            if result:
                return result
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"waited {timeout}s for {what}; Alertmanager's log:\n{self.log_tail()}"
                )
            time.sleep(0.1)


@contextlib.contextmanager
def alertmanager_server(config: str, ready_timeout: float = 20.0) -> Iterator[AlertmanagerServer]:
    """Start Alertmanager with ``config`` (the YAML text of alertmanager.yml)."""
    binary = require_alertmanager()
    with tempfile.TemporaryDirectory(prefix="alertmanager-test-") as tmp:
        root = Path(tmp)
        config_path = root / "alertmanager.yml"
        config_path.write_text(config)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        log_path = root / "alertmanager.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [
                    binary,
                    f"--config.file={config_path}",
                    f"--storage.path={root / 'data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    f"--web.external-url={url}",
                    # No gossip port and no waiting for peers to settle.
                    "--cluster.listen-address=",
                    "--log.level=warn",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # our own process group: a Ctrl-C aimed at pytest spares it
            )
        server = AlertmanagerServer(url, process, log_path)
        try:
            _wait_ready(server, ready_timeout)
            yield server
        finally:
            _stop(process)


def _wait_ready(server: AlertmanagerServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=1, trust_env=False) as client:
        while True:
            if server.process.poll() is not None:
                raise RuntimeError(
                    f"Alertmanager exited with {server.process.returncode}:\n{server.log_tail()}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if client.get(server.url + "/-/ready").status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"Alertmanager not ready after {timeout}s:\n{server.log_tail()}")
            time.sleep(0.1)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)  # Alertmanager shuts down cleanly on TERM
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)
