"""A real Alertmanager for tests: Debian's ``/usr/bin/prometheus-alertmanager``
(apt package ``prometheus-alertmanager``) started on a free loopback port with a
temporary config and storage directory, clustering off, and stopped afterwards.

Without the binary the tests skip with the reason, except under CI (``CI``
set), where they fail."""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx

from tests.daemons import Daemon, free_port, require_binary

ALERTMANAGER_BINARY = os.environ.get("ALERTMANAGER_BINARY", "/usr/bin/prometheus-alertmanager")
T = TypeVar("T")


def require_alertmanager() -> str:
    return require_binary(
        ALERTMANAGER_BINARY,
        "prometheus-alertmanager",
        "alertmanager",
        hint="apt-get install -y prometheus-alertmanager",
    )


def require_amtool() -> str:
    """amtool (same package), or skip (fail under CI)."""
    return require_binary(
        "/usr/bin/amtool", "amtool", hint="apt-get install -y prometheus-alertmanager"
    )


class AlertmanagerServer(Daemon):
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
        its own timers)."""
        return self.poll(probe, timeout, what, done=bool)


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
        server = AlertmanagerServer("Alertmanager", url, process, log_path)
        try:
            server.wait_ready(ready_timeout)
            yield server
        finally:
            server.stop()
