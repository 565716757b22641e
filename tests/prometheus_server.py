"""A real Prometheus for tests: Debian's ``/usr/bin/prometheus`` (apt package
``prometheus``) started on a loopback port with a temporary config and
storage, scraping the given targets every second, and stopped afterwards.

Without the binary the tests skip with the reason, except under CI (``CI``
set), where they fail."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

import httpx
import pytest

PROMETHEUS_BINARY = os.environ.get("PROMETHEUS_BINARY", "/usr/bin/prometheus")
T = TypeVar("T")


def require_prometheus() -> str:
    """The binary's path, or skip (fail under CI) with how to get it."""
    path = PROMETHEUS_BINARY if os.path.exists(PROMETHEUS_BINARY) else shutil.which("prometheus")
    if path is None:
        message = (
            f"Prometheus not installed ({PROMETHEUS_BINARY} missing): apt-get install -y prometheus"
        )
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class PrometheusServer:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def wait_for(
        self, probe: Callable[[], T | None], timeout: float = 15.0, what: str = "data"
    ) -> T:
        """Poll ``probe`` until it returns something (Prometheus scrapes on its own
        schedule, so the tests wait for it, boundedly)."""
        deadline = time.monotonic() + timeout
        while True:
            result = probe()
            if result is not None:
                return result
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"Prometheus had no {what} after {timeout}s; its log:\n{self.log_tail()}"
                )
            time.sleep(0.2)


def _config(targets: Sequence[str], scrape_interval: str) -> str:
    lines = [
        "global:",
        f"  scrape_interval: {scrape_interval}",
        f"  evaluation_interval: {scrape_interval}",
        "scrape_configs:",
    ]
    for i, target in enumerate(targets):
        parts = urlsplit(target)
        lines += [
            f"  - job_name: target{i}",
            f"    metrics_path: {parts.path or '/metrics'}",
            f"    scheme: {parts.scheme or 'http'}",
            f"    scrape_timeout: {scrape_interval}",
            "    static_configs:",
            f"      - targets: ['{parts.netloc}']",
        ]
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def prometheus_server(
    targets: Sequence[str], scrape_interval: str = "1s", ready_timeout: float = 20.0
) -> Iterator[PrometheusServer]:
    """Start Prometheus scraping ``targets`` (full URLs of /metrics endpoints)."""
    binary = require_prometheus()
    with tempfile.TemporaryDirectory(prefix="prometheus-test-") as tmp:
        root = Path(tmp)
        config = root / "prometheus.yml"
        config.write_text(_config(targets, scrape_interval))
        port = free_port()
        log_path = root / "prometheus.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [
                    binary,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={root / 'data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--web.enable-lifecycle",
                    "--log.level=warn",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # our own process group: a Ctrl-C aimed at pytest spares it
            )
        server = PrometheusServer(f"http://127.0.0.1:{port}", process, log_path)
        try:
            _wait_ready(server, ready_timeout)
            yield server
        finally:
            _stop(process)


def _wait_ready(server: PrometheusServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=1, trust_env=False) as client:
        while True:
            if server.process.poll() is not None:
                raise RuntimeError(
                    f"Prometheus exited with {server.process.returncode}:\n{server.log_tail()}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if client.get(server.url + "/-/ready").status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"Prometheus not ready after {timeout}s:\n{server.log_tail()}")
            time.sleep(0.1)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)  # Prometheus shuts down cleanly on TERM
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)
