"""Paging under provider faults, with real processes: ``sentinel deliver``
SIGKILLed mid-backlog, a Twilio that hangs, and a long Twilio outage under
``sentinel serve``. The fake Twilio runs in the test; the sentinel's database
is the test's (SQLite or PostgreSQL). Each test prints its outcome line
(pages sent, lost, duplicated, takeover and stop times)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from sentinel.alerting.outbox import enqueue
from sentinel.db import Database
from sentinel.models import DeliveryAttempt, Notification, NotificationStatus
from tests.fakes.twilio_server import FakeTwilioServer, TwilioReply
from tests.identity import ADMIN_HEADERS

pytestmark = [pytest.mark.slow, pytest.mark.postgres_journey]

FROM = "+15005550006"


def _wait(predicate: Callable[[], Any], seconds: float, what: str) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        try:
            found = predicate()
        except httpx.HTTPError:
            found = None
        if found:
            return found
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _env(
    sentinel_url: str, twilio: FakeTwilioServer, tmp_path: Path, **extra: str
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SENTINEL_", "TWILIO_"))}
    env.update(
        SENTINEL_DATABASE_URL=sentinel_url,
        SENTINEL_TWILIO_ACCOUNT_SID=twilio.account_sid,
        SENTINEL_TWILIO_AUTH_TOKEN=twilio.auth_token,
        SENTINEL_TWILIO_FROM_NUMBER=FROM,
        SENTINEL_TWILIO_BASE_URL=twilio.base_url,
        SENTINEL_OUTBOX_FILE=str(tmp_path / "outbox.jsonl"),
        SENTINEL_TICK_SECONDS="0.5",
        **extra,
    )
    return env


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    out = log.open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "sentinel.cli", *args], env=env, stdout=out, stderr=out
    )


def _stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> float:
    """Signal ``proc``; seconds until it exited."""
    started = time.monotonic()
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
        raise AssertionError("the process ignored the signal for 30 s") from None
    return time.monotonic() - started


@pytest.fixture
def twilio() -> Iterator[FakeTwilioServer]:
    with FakeTwilioServer() as server:
        yield server


@pytest.fixture
def db(sentinel_url: str) -> Iterator[Database]:
    database = Database(sentinel_url)
    yield database
    database.dispose()


def _statuses(db: Database) -> Counter[str]:
    with db.session() as s:
        rows = s.execute(select(Notification.status, func.count()).group_by(Notification.status))
        return Counter({status.value: n for status, n in rows})


def _outcome(name: str, **figures: object) -> None:
    print(f"\nCHAOS {name}: " + json.dumps(figures, default=str))


def test_a_dispatcher_killed_mid_backlog_loses_nothing_and_is_taken_over_within_seconds(
    db, twilio, sentinel_url, tmp_path
):
    pages = 400
    twilio.latency = 0.2  # each answer takes 200 ms: the backlog lasts about ten seconds
    now = datetime.now(UTC)
    with db.session() as s:
        for i in range(pages):
            to = f"+1555000{i % 40:04d}"
            enqueue(s, f"chaos-{i}", "sms", to, {"text": f"[P1] backlog page {i}"}, now)
    env = _env(sentinel_url, twilio, tmp_path)
    # Two dispatchers share the backlog (a `serve` and a `deliver`, or two
    # `deliver`s); one is killed, the other takes its claims over.
    first = _start(["deliver"], env, tmp_path / "first.log")
    _wait(lambda: len(twilio.created()) >= pages // 8, 60, "the first dispatcher at work")
    second = _start(["deliver"], env, tmp_path / "second.log")
    _wait(
        lambda: "notification.attempt" in (tmp_path / "second.log").read_text(),
        60,
        "the second dispatcher at work",
    )
    first.send_signal(signal.SIGKILL)
    killed_at = datetime.now(UTC)
    first.wait(10)
    sent_before = len(twilio.created())
    # The killed one's claims: still held, under the same claim, a moment later
    # (the survivor's own finish in milliseconds).
    held = _claims(db)
    time.sleep(1.5)
    orphans = {nid for nid, token in _claims(db).items() if held.get(nid) == token}
    try:
        _wait(lambda: _statuses(db)["sent"] == pages, 90, "every page sent")
    finally:
        stop_seconds = _stop(second)
    with db.session() as s:
        settled = dict(
            s.execute(
                select(DeliveryAttempt.notification_id, func.min(DeliveryAttempt.at))
                .where(DeliveryAttempt.notification_id.in_(orphans))
                .group_by(DeliveryAttempt.notification_id)
            ).all()
        )
        by_lookup = s.scalar(
            select(func.count())
            .select_from(DeliveryAttempt)
            .where(DeliveryAttempt.source == "lookup")
        )
    bodies = Counter(m["body"] for m in twilio.created())
    expected = {f"[P1] backlog page {i}" for i in range(pages)}
    lost = expected - set(bodies)
    assert set(bodies) <= expected, set(bodies) - expected
    duplicated = sum(n - 1 for n in bodies.values())
    after_kill = sorted((_aware(at) - killed_at).total_seconds() for at in settled.values())
    takeover = after_kill[-1] if after_kill else 0.0
    _outcome(
        "sigkill_mid_backlog",
        pages=pages,
        sent_before_kill=sent_before,
        orphaned_claims=len(orphans),
        settled_by_lookup=by_lookup,
        sent=len(bodies),
        lost=len(lost),
        duplicated=duplicated,
        first_takeover_seconds=round(after_kill[0], 2) if after_kill else None,
        takeover_seconds=round(takeover, 2),
        sigterm_exit_seconds=round(stop_seconds, 2),
    )
    assert not lost
    assert max(bodies.values()) <= 2  # at most one duplicate per page
    assert orphans and set(settled) == orphans
    assert takeover <= 10.0
    assert second.returncode == 0


def _claims(db: Database) -> dict[int, str | None]:
    with db.session() as s:
        return dict(
            s.execute(
                select(Notification.id, Notification.claim_token).where(
                    Notification.status == NotificationStatus.sending
                )
            ).all()
        )


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def test_a_hung_twilio_holds_only_its_own_pages_and_sigterm_still_stops_the_dispatcher(
    db, twilio, sentinel_url, tmp_path
):
    hung = "+15550006666"
    twilio.rule = lambda request: TwilioReply.hang() if request.param("To") == hung else None
    env = _env(sentinel_url, twilio, tmp_path)
    proc = _start(["deliver"], env, tmp_path / "deliver.log")
    try:
        with db.session() as s:
            for i in range(3):
                text = f"[P1] page {i} to a number Twilio hangs on"
                enqueue(s, f"hung-{i}", "sms", hung, {"text": text}, datetime.now(UTC))
        _wait(
            lambda: sum(r.param("To") == hung for r in twilio.requests) >= 3, 30, "the hung sends"
        )
        latencies = []
        for i in range(8):  # later pages, posted while those hang
            posted = time.time()
            with db.session() as s:
                text = f"[P1] later page {i}"
                enqueue(s, f"later-{i}", "sms", "+15550000001", {"text": text}, datetime.now(UTC))
            arrived = _wait(
                lambda text=text: next(
                    (r.received_at for r in twilio.requests if r.param("Body") == text), None
                ),
                30,
                f"later page {i}",
            )
            latencies.append(arrived - posted)
            time.sleep(0.5)
    finally:
        stop_seconds = _stop(proc)
    with db.session() as s:
        hung_rows = s.scalars(select(Notification).where(Notification.recipient == hung)).all()
    _outcome(
        "twilio_hangs",
        later_pages=len(latencies),
        later_max_latency_seconds=round(max(latencies), 2),
        hung_requests=sum(r.param("To") == hung for r in twilio.requests),
        sigterm_exit_seconds=round(stop_seconds, 2),
        hung_pages_after_stop=sorted(r.status.value for r in hung_rows),
    )
    # Every later page reached Twilio before even one hung request timed out (5 s).
    assert max(latencies) < 5.0
    assert proc.returncode == 0
    # The hung pages were handed back, not left claimed by a process that is gone.
    assert {r.status for r in hung_rows} == {NotificationStatus.pending}


ALERTING = """
people:
  alice: {phone: "+15550000001"}
  manager: {phone: "+15550000099"}
policies:
  phone:
    steps:
      - notify: {people: [alice]}
        channels: [voice, sms]
        wait_minutes: 0.25
      - notify: {people: [manager]}
        channels: [voice]
        wait_minutes: 0.25
    repeat: 1
routes:
  - name: critical
    policy: phone
    group_by: [alertname]
    group_wait_seconds: 0
"""

CATALOGUE = """
signals:
  - name: heartbeat
    description: a pushed heartbeat (nothing else to read in this test)
    kind: level
    interval_seconds: 1
    no_data: ok
    labels: {team: core, service: demo}
    source: {type: push, window_seconds: 60}
    detector: {kind: static, params: {threshold: 100, direction: above}}
"""


def test_a_p1_through_a_long_twilio_outage_reaches_a_person_when_twilio_returns(
    db, twilio, sentinel_url, tmp_path
):
    """A 10-minute outage at production timing (2 s back-off doubling to 30 s,
    escalation steps of minutes), compressed 15-fold: 40 s of HTTP 500 with a
    0.2 s back-off capped at 2 s and 15-second escalation steps."""
    (tmp_path / "alerting.yaml").write_text(ALERTING)
    (tmp_path / "catalogue.yaml").write_text(CATALOGUE)
    twilio.default = TwilioReply.server_error()
    env = _env(
        sentinel_url,
        twilio,
        tmp_path,
        SENTINEL_ALERTING=str(tmp_path / "alerting.yaml"),
        SENTINEL_CATALOGUE=str(tmp_path / "catalogue.yaml"),
        SENTINEL_BACKFILL_DAYS="0",
        SENTINEL_DELIVERY_BACKOFF_SECONDS="0.2",
        SENTINEL_DELIVERY_MAX_BACKOFF_SECONDS="2",
        SENTINEL_DELIVERY_MAX_ATTEMPTS="3",
        SENTINEL_HEALTH_CYCLE_STALE_SECONDS="10",
    )
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    proc = _start(["serve", "--port", str(port)], env, tmp_path / "serve.log")
    try:
        _wait(lambda: httpx.get(f"{base}/api/health", timeout=2).json()["leader"], 60, "the lead")
        now = datetime.now(UTC).isoformat()
        payload = {
            "version": "4",
            "groupKey": '{}:{alertname="PaymentsFailing"}',
            "status": "firing",
            "receiver": "sentinel",
            "alerts": [
                {
                    "status": "firing",
                    "labels": {"alertname": "PaymentsFailing", "severity": "P1"},
                    "annotations": {"summary": "wallet payments failing"},
                    "startsAt": now,
                }
            ],
        }
        assert httpx.post(
            f"{base}/api/alertmanager/webhook", json=payload, headers=ADMIN_HEADERS, timeout=5
        ).is_success
        outage_started = time.monotonic()
        _wait(
            lambda: httpx.get(f"{base}/api/health", timeout=5).status_code == 503,
            30,
            "health to say the channel fails",
        )
        during = httpx.get(f"{base}/api/health", timeout=5).json()
        time.sleep(max(0.0, 40 - (time.monotonic() - outage_started)))  # the outage goes on
        outage_requests = len(twilio.requests)
        with db.session() as s:
            failed = s.scalar(
                select(func.count())
                .select_from(Notification)
                .where(Notification.status == NotificationStatus.failed)
            )
        twilio.default = TwilioReply.ok()
        recovered = time.monotonic()
        first = _wait(lambda: twilio.created("Calls") or twilio.created("Messages"), 30, "a page")
        reached_after = time.monotonic() - recovered
        _wait(
            lambda: httpx.get(f"{base}/api/health", timeout=5).status_code == 200,
            30,
            "health to recover",
        )
        statuses = _wait(lambda: _settled(_statuses(db)), 30, "every page settled")
    finally:
        stop_seconds = _stop(proc)
    reached = Counter(r["to"] for r in twilio.created("Calls") + twilio.created("Messages"))
    _outcome(
        "twilio_outage",
        outage_seconds=40,
        requests_during_outage=outage_requests,
        failed_during_outage=failed,
        health_during=during["reasons"],
        first_page_after_recovery_seconds=round(reached_after, 2),
        reached=dict(reached),
        notifications=dict(statuses),
        sigterm_exit_seconds=round(stop_seconds, 2),
    )
    assert failed == 0  # the outage used nothing up
    assert any(r.startswith("channel voice: failing") for r in during["reasons"])
    assert first and reached["+15550000001"] >= 1
    assert reached_after < 5.0  # at once: within the 2 s back-off cap and a poll
    assert statuses["failed"] == 0 and statuses["sent"] >= 3


def _settled(statuses: Counter[str]) -> Counter[str] | None:
    """``statuses`` once no page is waiting or in flight."""
    return None if statuses["pending"] or statuses["sending"] else statuses


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
