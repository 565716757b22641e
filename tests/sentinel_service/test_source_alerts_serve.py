"""``sentinel serve`` (a real process) started while the translator's database
cannot be opened: the phone rings once, at the fake Twilio through the real
client, naming the database; nothing more while it stays unreadable; and the
person paged hears it is over once the database can be read."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from sentinel.settings import DEFAULT_CATALOGUE
from tests.fakes.providers import FROM_NUMBER
from tests.fakes.twilio_server import FakeTwilioServer
from tests.identity import ADMIN_HEADERS
from tests.sentinel_service.test_source_alerts import make_readable, missing_database
from tests.sources.conftest import closed_port

pytestmark = pytest.mark.slow


def compressed_sql_catalogue(target: Path) -> Path:
    """The default catalogue's SQL signals, read every second and without data for
    three seconds counting as no data: minutes of the real thing in seconds."""
    data = yaml.safe_load(DEFAULT_CATALOGUE.read_text())
    signals = [s for s in data["signals"] if s["source"]["type"] == "sql"]
    for spec in signals:
        spec["interval_seconds"] = 1
        spec["no_data_after_seconds"] = 3
    target.write_text(yaml.safe_dump({"signals": signals}, sort_keys=False))
    return target


def wait_for(predicate: Callable[[], Any], timeout: float = 45.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = predicate()
        except httpx.HTTPError:
            result = None
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"not in {timeout:g} s: {what}")


def test_serve_with_an_unreadable_database_rings_once_naming_it(
    sentinel_url: str, tmp_path: Path
) -> None:
    port = closed_port()
    base = f"http://127.0.0.1:{port}"
    with missing_database(tmp_path) as (translator_url, words), FakeTwilioServer() as twilio:
        env = {
            **os.environ,
            "SENTINEL_DATABASE_URL": sentinel_url,
            "SENTINEL_TRANSLATOR_DATABASE_URL": translator_url,
            "SENTINEL_CATALOGUE": str(compressed_sql_catalogue(tmp_path / "signals.yaml")),
            "SENTINEL_SCRAPE_TARGETS": json.dumps([f"http://127.0.0.1:{closed_port()}/m"]),
            "SENTINEL_NODE_TARGETS": json.dumps([f"http://127.0.0.1:{closed_port()}/m"]),
            "SENTINEL_TRANSLATOR_LOG_FILE": str(tmp_path / "translator.log"),
            "SENTINEL_TICK_SECONDS": "0.2",
            "SENTINEL_STARTUP_GRACE_SECONDS": "3",
            "SENTINEL_SOURCE_WARMUP_SECONDS": "3",
            "SENTINEL_SOURCE_DOWN_AFTER_SECONDS": "2",
            "SENTINEL_PUBLIC_URL": base,
            "SENTINEL_OUTBOX_FILE": str(tmp_path / "outbox.jsonl"),
            "SENTINEL_TWILIO_ACCOUNT_SID": twilio.account_sid,
            "SENTINEL_TWILIO_AUTH_TOKEN": twilio.auth_token,
            "SENTINEL_TWILIO_FROM_NUMBER": FROM_NUMBER,
            "SENTINEL_TWILIO_BASE_URL": twilio.base_url,
        }
        log = (tmp_path / "sentinel.log").open("w")
        proc = subprocess.Popen(
            [sys.executable, "-m", "sentinel.cli", "serve", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for(lambda: httpx.get(f"{base}/api/health").json()["leader"], what="leader")
            calls = wait_for(
                lambda: [r for r in twilio.requests if r.resource == "Calls"], what="a call"
            )

            # Every SQL signal alerting on no data is NO_DATA by now (3 s), muted by the
            # source alert; keep watching long enough for any of them to have paged.
            def no_data_signals() -> set[str]:
                alerts = httpx.get(
                    f"{base}/api/alerts", headers=ADMIN_HEADERS, params={"state": "no_data"}
                ).json()
                return {a["signal"] for a in alerts}

            wait_for(
                lambda: {"queue.lag_seconds", "queue.depth"} <= no_data_signals(),
                what="the signals' own no-data alerts",
            )
            # The muted no-data groups would page after the critical route's group_wait
            # (10 s): watch that long past it, failing at the first extra message.
            watch_until = time.monotonic() + 12
            while time.monotonic() < watch_until:
                rung = [r.resource for r in twilio.requests if r.resource in ("Calls", "Messages")]
                assert len(rung) == len(set(rung)), rung  # one call and one SMS, never more
                time.sleep(0.2)
            assert sorted(rung) == ["Calls", "Messages"]
            [call] = calls
            twiml = call.param("Twiml") or ""
            assert "source down, source database translator" in twiml
            spoken = " ".join(words.replace('"', "").replace("_", " ").split())
            assert spoken in twiml
            [source_alert] = httpx.get(
                f"{base}/api/alerts", headers=ADMIN_HEADERS, params={"signal": "source.down"}
            ).json()
            assert source_alert["state"] == "firing"
            assert words in source_alert["summary"]

            make_readable(translator_url)
            wait_for(
                lambda: (
                    httpx.get(
                        f"{base}/api/alerts",
                        headers=ADMIN_HEADERS,
                        params={"signal": "source.down"},
                    ).json()[0]["state"]
                    == "resolved"
                ),
                what="the source alert resolved",
            )
            wait_for(lambda: not no_data_signals(), what="the signals' data back")
            texts = wait_for(
                lambda: [r for r in twilio.requests if r.resource == "Messages"][1:],
                what="the resolution",
            )
            assert [t.param("Body").startswith("RESOLVED") for t in texts] == [True]
            assert sorted(r.resource for r in twilio.requests) == ["Calls", "Messages", "Messages"]
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
            log.close()
