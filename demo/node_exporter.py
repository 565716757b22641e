"""The demo's node exporter: Debian's ``prometheus-node-exporter`` on a free
loopback port, so the host signals (CPU, memory, disk) have a node to read.
Without the binary the demo runs on and says so once; the host signals then
show "no data" with the reason."""

from __future__ import annotations

import atexit
import contextlib
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx

BINARIES = ("/usr/bin/prometheus-node-exporter", "prometheus-node-exporter", "node_exporter")
COLLECTORS = ("cpu", "meminfo", "filesystem")
# The exporter's default list without "overlay": in a container the root filesystem is one.
FS_TYPES_EXCLUDE = (
    "^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|"
    "iso9660|mqueue|nsfs|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs|sysfs|"
    "tracefs)$"
)
READY_TIMEOUT_SECONDS = 15.0


def find_binary() -> str | None:
    return next(filter(None, (shutil.which(name) for name in BINARIES)), None)


def exporter_command(binary: str, address: str) -> list[str]:
    """The exporter with only the collectors the host signals read."""
    return [
        binary,
        f"--web.listen-address={address}",
        "--collector.disable-defaults",
        *(f"--collector.{name}" for name in COLLECTORS),
        f"--collector.filesystem.fs-types-exclude={FS_TYPES_EXCLUDE}",
        "--log.level=warn",
    ]


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _wait_ready(process: subprocess.Popen[bytes], url: str) -> bool:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    with httpx.Client(timeout=1, trust_env=False) as client:
        while time.monotonic() < deadline and process.poll() is None:
            with contextlib.suppress(httpx.HTTPError):
                if client.get(url).status_code == 200:
                    return True
            time.sleep(0.1)
    return False


def start_node_exporter(host: str, log_path: Path) -> list[str]:
    """Start the exporter for the rest of the run (stopped at exit); its /metrics
    URL as the sentinel's node targets, or [] to keep the default when it cannot run."""
    binary = find_binary()
    if binary is None:
        print(
            "No prometheus-node-exporter found (apt-get install prometheus-node-exporter): "
            "the host signals will show no data.",
            flush=True,
        )
        return []
    address = f"{host}:{_free_port(host)}"
    url = f"http://{address}/metrics"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            exporter_command(binary, address), stdout=log, stderr=subprocess.STDOUT
        )
    atexit.register(_stop, process)
    if not _wait_ready(process, url):
        print(f"The node exporter did not start (see {log_path}): host signals show no data.")
        return []
    return [url]


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
