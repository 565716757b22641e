"""A real node exporter for tests: Debian's ``/usr/bin/prometheus-node-exporter``
(apt package ``prometheus-node-exporter``) on a loopback port, with only the
collectors the host signals read (CPU, memory, filesystems), stopped afterwards.

Without the binary the tests skip with the reason, except under CI (``CI``
set), where they fail."""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx

from demo.node_exporter import exporter_command
from tests.daemons import Daemon, free_port, require_binary

NODE_EXPORTER_BINARY = os.environ.get(
    "NODE_EXPORTER_BINARY", "/usr/bin/prometheus-node-exporter"
)
def require_node_exporter() -> str:
    return require_binary(
        NODE_EXPORTER_BINARY,
        "prometheus-node-exporter",
        "node_exporter",
        hint="apt-get install -y prometheus-node-exporter",
    )


class NodeExporter(Daemon):
    @property
    def metrics_url(self) -> str:
        return self.url + "/metrics"

    def wait_ready(self, timeout: float) -> None:
        # The exporter has no /-/ready: it is ready when /metrics answers.
        def probe() -> bool | None:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.metrics_url, timeout=1, trust_env=False).status_code == 200:
                    return True
            return None

        self.poll(probe, timeout, "the node exporter to answer /metrics")


@contextlib.contextmanager
def node_exporter(ready_timeout: float = 15.0) -> Iterator[NodeExporter]:
    binary = require_node_exporter()
    with tempfile.TemporaryDirectory(prefix="node-exporter-test-") as tmp:
        port = free_port()
        log_path = Path(tmp) / "node-exporter.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                exporter_command(binary, f"127.0.0.1:{port}"),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # our own process group: a Ctrl-C aimed at pytest spares it
            )
        exporter = NodeExporter("node exporter", f"http://127.0.0.1:{port}", process, log_path)
        try:
            exporter.wait_ready(ready_timeout)
            yield exporter
        finally:
            exporter.stop()
