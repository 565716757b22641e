"""Each demo run starts from a clean state. A run left behind open incidents,
firing alerts, a release lock and pages in flight; a second run on top of them
would resolve the old alerts (RESOLVED pages for faults it never injected) and
the release gate would refuse both releases because the first run's incident is
still open. So before starting, the previous run's files are moved, whole, to
``var/last-run/`` (replacing an older one): nothing is deleted that the run
before the last one did not already leave behind, and the last run stays there
to read."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

LAST_RUN = "last-run"


class DemoBusy(RuntimeError):
    """Another demo (or another program) holds a port this one needs."""


def ensure_ports_free(host: str, ports: dict[str, int]) -> None:
    """Before touching var/: a running demo still uses it."""
    for what, port in ports.items():
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError as exc:
                raise DemoBusy(
                    f"{host}:{port} ({what}) is in use: is another demo still running? "
                    f"Stop it, or pick other ports (--port, --sentinel-port, --postmortems-port). "
                    f"Nothing under var/ was touched. ({exc.strerror})"
                ) from None


def start_fresh(var: Path) -> Path | None:
    """Move everything in ``var`` but ``last-run/`` into ``var/last-run/``; returns it,
    or None when there was nothing to move (a first run)."""
    var.mkdir(parents=True, exist_ok=True)
    previous = [entry for entry in var.iterdir() if entry.name != LAST_RUN]
    if not previous:
        return None
    last_run = var / LAST_RUN
    if last_run.exists():
        shutil.rmtree(last_run)
    last_run.mkdir()
    for entry in previous:
        entry.rename(last_run / entry.name)
    return last_run
