"""A real Prometheus for tests: Debian's ``/usr/bin/prometheus`` (apt package
``prometheus``) started on a loopback port with a temporary config and
storage, scraping the given targets every second, and stopped afterwards.

Without the binary the tests skip with the reason, except under CI (``CI``
set), where they fail."""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

from tests.daemons import Daemon, free_port, require_binary

PROMETHEUS_BINARY = os.environ.get("PROMETHEUS_BINARY", "/usr/bin/prometheus")
T = TypeVar("T")


def require_prometheus() -> str:
    return require_binary(PROMETHEUS_BINARY, "prometheus", hint="apt-get install -y prometheus")


class PrometheusServer(Daemon):
    def wait_for(
        self, probe: Callable[[], T | None], timeout: float = 15.0, what: str = "data"
    ) -> T:
        """Poll ``probe`` until it returns something (Prometheus scrapes on its own
        schedule)."""
        return self.poll(probe, timeout, f"Prometheus to have {what}")


def _config(targets: Sequence[str], scrape_interval: str, rule_files: Sequence[Path] = ()) -> str:
    lines = [
        "global:",
        f"  scrape_interval: {scrape_interval}",
        f"  evaluation_interval: {scrape_interval}",
    ]
    if rule_files:
        lines += ["rule_files:", *(f"  - '{path}'" for path in rule_files)]
    lines.append("scrape_configs:")
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
    targets: Sequence[str],
    scrape_interval: str = "1s",
    ready_timeout: float = 20.0,
    rule_files: Sequence[Path] = (),
) -> Iterator[PrometheusServer]:
    """Start Prometheus scraping ``targets`` (full URLs of /metrics endpoints), evaluating
    ``rule_files`` as often."""
    binary = require_prometheus()
    with tempfile.TemporaryDirectory(prefix="prometheus-test-") as tmp:
        root = Path(tmp)
        config = root / "prometheus.yml"
        config.write_text(_config(targets, scrape_interval, rule_files))
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
        server = PrometheusServer("Prometheus", f"http://127.0.0.1:{port}", process, log_path)
        try:
            server.wait_ready(ready_timeout)
            yield server
        finally:
            server.stop()
