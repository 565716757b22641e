"""A real Alertmanager (Debian's ``prometheus-alertmanager``) notifying a real
sentinel over HTTP through its webhook receiver, with a bearer token, and the
payloads it actually sent kept and checked against payload version 4."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from common.identity import AccountKind, Role, open_store
from common.yaml_config import parse_yaml_model
from sentinel.alerting.receiver import ZERO_TIME, AmPayload
from sentinel.api import create_app
from sentinel.catalogue import Catalogue
from sentinel.service import build_sentinel
from sentinel.settings import SentinelSettings
from tests.alertmanager_server import alertmanager_server, require_alertmanager
from tests.identity import ADMIN_HEADERS
from tests.sources.conftest import listening_socket

TOKEN = "vgl_alertmanager-real-token"  # the alertmanager service account's
WEBHOOK = "/api/alertmanager/webhook"


@dataclass
class Captured:
    headers: dict[str, str]
    body: bytes
    status: int


@dataclass
class CapturingProxy:
    """Sits between Alertmanager and the sentinel: keeps each raw request, then
    forwards it unchanged and answers with the sentinel's response."""

    upstream: str
    url: str = ""
    requests: list[Captured] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def payloads(self) -> list[dict[str, Any]]:
        with self.lock:
            return [json.loads(r.body) for r in self.requests]


@contextlib.contextmanager
def capturing_proxy(upstream: str) -> Iterator[CapturingProxy]:
    proxy = CapturingProxy(upstream)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            forwarded = httpx.post(
                proxy.upstream + self.path,
                content=body,
                headers={
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() in ("authorization", "content-type", "user-agent")
                },
                timeout=10,
                trust_env=False,
            )
            with proxy.lock:
                proxy.requests.append(
                    Captured(
                        {k.lower(): v for k, v in self.headers.items()}, body, forwarded.status_code
                    )
                )
            self.send_response(forwarded.status_code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(forwarded.content)))
            self.end_headers()
            self.wfile.write(forwarded.content)

        def log_message(self, *args: Any) -> None:  # keep pytest's output clean
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    proxy.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@contextlib.contextmanager
def serve_sentinel(sentinel_url: str, database_url: str, clock: Any) -> Iterator[str]:
    """The sentinel's API (no evaluation loop) on a loopback port."""
    sentinel = build_sentinel(
        SentinelSettings(database_url=sentinel_url, translator_database_url=database_url),
        clock=clock,
        catalogue=parse_yaml_model("signals: []", Catalogue),
        migrate=False,
    )
    store = open_store()
    store.create_account("alertmanager", Role.responder, AccountKind.service)
    store.issue_token("alertmanager", "webhook_config", TOKEN)
    store.dispose()
    sock = listening_socket()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(sentinel, run_loop=False), log_config=None, access_log=False, lifespan="on"
        )
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the sentinel did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
        sentinel.close()


def alertmanager_config(webhook_url: str) -> str:
    receiver = {
        "url": webhook_url,
        "send_resolved": True,
        "http_config": {"authorization": {"type": "Bearer", "credentials": TOKEN}},
    }
    config = {
        "route": {
            "receiver": "sentinel",
            "group_by": ["alertname"],
            "group_wait": "1s",
            "group_interval": "1s",
            "repeat_interval": "1h",
            "routes": [{"matchers": ['alertname="QueueBacklog"'], "receiver": "sentinel-one"}],
        },
        "receivers": [
            {"name": "sentinel", "webhook_configs": [receiver]},
            # max_alerts cuts a group short; the payload says how many were left out.
            {"name": "sentinel-one", "webhook_configs": [{**receiver, "max_alerts": 1}]},
        ],
    }
    return json.dumps(config)  # JSON is YAML


def test_alerts_from_a_real_alertmanager(
    sentinel_url: str, database_url: str, clock: Any, tmp_path: Path
) -> None:
    require_alertmanager()
    started = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=2)
    disk_db1 = {
        "labels": {"alertname": "DiskFull", "instance": "db-1", "severity": "critical"},
        "annotations": {"summary": "disk 97% full on db-1", "runbook_url": "https://wiki/disk"},
        "startsAt": started,
        "generatorURL": "http://prometheus:9090/graph?g0.expr=disk",
    }
    disk_db2 = {
        "labels": {"alertname": "DiskFull", "instance": "db-2", "severity": "warning"},
        "annotations": {"description": "disk 85% full on db-2"},
        "startsAt": started,
    }
    backlog = [
        {"labels": {"alertname": "QueueBacklog", "queue": q, "severity": "P2"}, "startsAt": started}
        for q in ("a", "b")
    ]

    with (
        serve_sentinel(sentinel_url, database_url, clock) as sentinel,
        capturing_proxy(sentinel) as proxy,
        alertmanager_server(alertmanager_config(proxy.url + WEBHOOK)) as am,
    ):

        def alerts() -> dict[str, dict[str, Any]]:
            listed = httpx.get(
                f"{sentinel}/api/alerts", headers=ADMIN_HEADERS, timeout=5, trust_env=False
            ).json()
            return {
                a["labels"].get("instance") or a["labels"].get("queue"): a
                for a in listed
                if a["source"] == "alertmanager"
            }

        am.post_alerts([disk_db1, disk_db2, *backlog])
        firing = am.wait_for(
            lambda: (found := alerts()) and len(found) == 3 and found,
            what="the sentinel to record three alerts",
        )

        # What an on-call engineer sees in the sentinel.
        db1, db2 = firing["db-1"], firing["db-2"]
        assert db1["state"] == "firing" and db1["signal"] == "DiskFull"
        assert db1["severity"] == "P1" and db1["labels"]["instance"] == "db-1"
        assert db1["summary"] == (
            "[P1] DiskFull FIRING (Prometheus): disk 97% full on db-1 Runbook: https://wiki/disk"
        )
        assert datetime.fromisoformat(db1["started_at"]).replace(tzinfo=UTC) == started
        assert db2["severity"] == "P3"
        assert db2["summary"] == "[P3] DiskFull FIRING (Prometheus): disk 85% full on db-2"
        # Only the first of the truncated group reached the sentinel.
        (queue,) = [a for k, a in firing.items() if k in ("a", "b")]
        assert queue["signal"] == "QueueBacklog" and queue["severity"] == "P2"

        # Resolving one alert in Alertmanager resolves it in the sentinel, not its neighbour.
        ended = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
        am.post_alerts([{**disk_db1, "endsAt": ended}])
        am.wait_for(
            lambda: alerts()["db-1"]["state"] == "resolved",
            what="the sentinel to resolve db-1",
        )
        after = alerts()
        assert after["db-2"]["state"] == "firing"
        detail = httpx.get(
            f"{sentinel}/api/alerts/{after['db-1']['id']}",
            headers=ADMIN_HEADERS,
            timeout=5,
            trust_env=False,
        ).json()
        assert datetime.fromisoformat(detail["resolved_at"]).replace(tzinfo=UTC) == ended
        assert [t["to_state"] for t in detail["transitions"]] == ["firing", "resolved"]

        captured = list(proxy.requests)

    # Keep what Alertmanager really sent, and read it back as the receiver does.
    saved = tmp_path / "alertmanager-payloads.json"
    saved.write_text(json.dumps([json.loads(r.body) for r in captured], indent=2))
    print(f"payloads Alertmanager sent: {saved}")
    raw = json.loads(saved.read_text())
    assert all(r.status == 200 for r in captured), [r.status for r in captured]
    assert all(r.headers.get("authorization") == f"Bearer {TOKEN}" for r in captured)
    assert all(r.headers.get("content-type", "").startswith("application/json") for r in captured)
    for body in raw:
        assert body["version"] == "4"
        assert {
            "groupKey",
            "truncatedAlerts",
            "status",
            "receiver",
            "groupLabels",
            "commonLabels",
            "commonAnnotations",
            "externalURL",
            "alerts",
        } <= set(body)
        for alert in body["alerts"]:
            assert {"status", "labels", "annotations", "startsAt", "endsAt", "fingerprint"} <= set(
                alert
            )
    payloads = [AmPayload.model_validate(body) for body in raw]

    disk = [p for p in payloads if p.group_labels == {"alertname": "DiskFull"}]
    first = disk[0]
    assert first.receiver == "sentinel" and first.status == "firing"
    assert first.truncated_alerts == 0 and 'alertname="DiskFull"' in first.group_key
    assert first.external_url == am.url
    assert sorted(a.labels["instance"] for a in first.alerts) == ["db-1", "db-2"]
    assert all(len(a.fingerprint) == 16 for a in first.alerts)
    assert first.common_labels == {"alertname": "DiskFull"}
    # A firing alert's endsAt is Alertmanager's zero time ("not set"), in the raw text too.
    assert {a["endsAt"] for a in raw[payloads.index(first)]["alerts"]} == {ZERO_TIME}
    resolved = [a for p in disk for a in p.alerts if a.status == "resolved"]
    assert [a.labels["instance"] for a in resolved] == ["db-1"]
    assert resolved[0].ends_at == ended

    (truncated, *_) = [p for p in payloads if p.receiver == "sentinel-one"]
    assert truncated.truncated_alerts == 1 and len(truncated.alerts) == 1


def test_a_wrong_token_is_refused_and_records_nothing(
    sentinel_url: str, database_url: str, clock: Any
) -> None:
    require_alertmanager()
    with (
        serve_sentinel(sentinel_url, database_url, clock) as sentinel,
        capturing_proxy(sentinel) as proxy,
        alertmanager_server(
            alertmanager_config(proxy.url + WEBHOOK).replace(TOKEN, "not-the-token")
        ) as am,
    ):
        am.post_alerts(
            [
                {
                    "labels": {"alertname": "DiskFull", "instance": "db-1"},
                    "startsAt": datetime.now(UTC),
                }
            ]
        )
        am.wait_for(lambda: proxy.requests, what="Alertmanager to call the webhook")
        assert {r.status for r in proxy.requests} == {401}
        assert (
            httpx.get(
                f"{sentinel}/api/alerts", headers=ADMIN_HEADERS, timeout=5, trust_env=False
            ).json()
            == []
        )
