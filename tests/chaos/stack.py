"""What the chaos tests share: real ``sentinel serve`` replicas started as
operators start them, the lease holder read from the database, the pages the
console channel kept, and a pusher that sends values to whichever replica
answers and remembers which ones were acknowledged."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
from sqlalchemy import create_engine, text

from common.db import normalize_url
from tests.daemons import Daemon, free_port
from tests.identity import ADMIN_HEADERS

T = TypeVar("T")

# Pushed per shard (label n); any value above 0.5 is an anomaly that pages.
CATALOGUE = """
signals:
  - name: orders.failed
    description: failed orders a checkout service pushes, per shard
    kind: count
    severity: P1
    interval_seconds: 1
    labels: {team: payments, service: shop}
    no_data: keep
    source: {type: push, window_seconds: 10}
    detector: {kind: static, params: {threshold: 0.5, direction: above}, for_samples: 1}
"""

# Whoever is on call gets one SMS per shard's alert the moment it fires.
ALERTING = """
people:
  oncall: {name: On-call engineer, phone: "+15550001111"}
schedules:
  around-the-clock:
    name: around-the-clock
    time_zone: UTC
    layers:
      - name: everyone
        rotation: {participants: [oncall], start: "2026-01-05T00:00", handoff: weekly}
policies:
  sms:
    steps:
      - notify: {schedules: [around-the-clock]}
        channels: [sms]
        wait_minutes: 60
routes:
  - name: page-by-sms
    policy: sms
    group_by: [signal, n]
    group_wait_seconds: 0
"""


def wait_for(probe: Callable[[], T | None], timeout: float, what: str) -> T:
    """Poll ``probe`` until it answers something truthy (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(Exception):
            result = probe()
            if result:
                return result
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout}s for {what}")
        time.sleep(0.05)


def clean_environment() -> dict[str, str]:
    prefixes = ("TRANSLATOR_", "SENTINEL_", "TWILIO_", "GATE_", "POSTMORTEM_")
    return {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}


def write_configs(workdir: Path) -> tuple[Path, Path]:
    catalogue, alerting = workdir / "signals.yaml", workdir / "alerting.yaml"
    catalogue.write_text(CATALOGUE)
    alerting.write_text(ALERTING)
    return catalogue, alerting


def start_sentinel(
    replica: str, database_url: str, workdir: Path, lease_seconds: float, **extra: str
) -> Daemon:
    catalogue, alerting = write_configs(workdir)
    port = free_port()
    env = {
        **clean_environment(),
        "SENTINEL_DATABASE_URL": database_url,
        "SENTINEL_TRANSLATOR_DATABASE_URL": database_url,
        "SENTINEL_CATALOGUE": str(catalogue),
        "SENTINEL_ALERTING": str(alerting),
        "SENTINEL_OUTBOX_FILE": str(workdir / "outbox.jsonl"),
        "SENTINEL_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "SENTINEL_REPLICA": replica,
        "SENTINEL_LEASE_SECONDS": str(lease_seconds),
        "SENTINEL_TICK_SECONDS": "0.2",
        "SENTINEL_BACKFILL_DAYS": "0",
        **extra,
    }
    log_path = workdir / f"sentinel-{replica}.log"
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "sentinel.cli", "serve", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    daemon = Daemon(f"sentinel-{replica}", f"http://127.0.0.1:{port}", process, log_path)
    try:
        wait_for(
            lambda: (
                httpx.get(daemon.url + "/api/alerts", headers=ADMIN_HEADERS, timeout=2).status_code
                == 200
            ),
            60,
            f"{daemon.name} to serve",
        )
    except AssertionError as exc:
        daemon.stop()  # a sentinel left running would lead the next test's database
        raise AssertionError(f"{exc}; its log:\n{daemon.log_tail()}") from None
    return daemon


class Lease:
    """Reads the evaluation lease straight from the database."""

    def __init__(self, database_url: str) -> None:
        self.engine = create_engine(normalize_url(database_url), pool_pre_ping=True)

    def holder(self) -> str | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                text("SELECT holder, expires_at > clock_timestamp() FROM leases")
            ).first()
        return row[0] if row and row[1] else None

    def query(self, sql: str, **params: Any) -> list[Any]:
        with self.engine.connect() as conn:
            return list(conn.execute(text(sql), params))

    def close(self) -> None:
        self.engine.dispose()


def pages(outbox: Path) -> list[dict[str, Any]]:
    if not outbox.exists():
        return []
    return [json.loads(line) for line in outbox.read_text().splitlines() if line.strip()]


def pages_for(outbox: Path, shard: str) -> list[dict[str, Any]]:
    return [p for p in pages(outbox) if f"orders.failed{{n={shard}}}" in p["text"]]


@dataclass
class Pusher:
    """Pushes ``value`` for every shard in ``shards`` every ``period`` seconds, to
    the first replica of ``urls`` that answers 202, and records what was acknowledged."""

    urls: list[str]
    shards: dict[str, float] = field(default_factory=dict)
    period: float = 0.2
    acknowledged: list[tuple[str, datetime]] = field(default_factory=list)
    refused: int = 0

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._lock = threading.Lock()

    def start(self) -> None:
        self._thread.start()

    def set(self, shard: str, value: float) -> None:
        with self._lock:
            self.shards[shard] = value

    def _run(self) -> None:
        with httpx.Client(timeout=3, trust_env=False, headers=ADMIN_HEADERS) as client:
            turn = 0
            while not self._stop.is_set():
                with self._lock:
                    shards = dict(self.shards)
                for shard, value in shards.items():
                    at = datetime.now(UTC)
                    body = {"value": value, "labels": {"n": shard}, "t": at.isoformat()}
                    turn += 1
                    for i in range(len(self.urls)):  # alternate; fall over to the other
                        url = self.urls[(turn + i) % len(self.urls)]
                        try:
                            answer = client.post(f"{url}/api/push/orders.failed", json=body)
                        except httpx.HTTPError:
                            self.refused += 1
                            continue
                        if answer.status_code == 202:
                            self.acknowledged.append((shard, at))
                            break
                        self.refused += 1
                self._stop.wait(self.period)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
