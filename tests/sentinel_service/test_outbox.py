"""The notification outbox: nothing lost, retries with backoff, at most one
duplicate after a dispatcher is killed mid-send."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select

from sentinel.alerting.dispatcher import Dispatcher
from sentinel.alerting.outbox import RetryPolicy, claim, enqueue, record
from sentinel.db import Database
from sentinel.models import DeliveryAttempt, Notification, NotificationStatus


@dataclass
class R:
    ok: bool
    retryable: bool = True
    provider_id: str | None = None
    retry_after: float | None = None
    error: str | None = None
    status: str = "queued"


def _add(db, clock, key="a1:step0:alice:sms", channel="sms"):
    with db.session() as s:
        return enqueue(s, key, channel, "+15550001", {"text": "[P1] disk full"}, clock.now())


def _rows(db):
    with db.session() as s:
        return s.scalars(select(Notification).order_by(Notification.id)).all()


def test_enqueue_is_idempotent_per_key(sentinel_url, clock):
    db = Database(sentinel_url)
    assert _add(db, clock) is True
    assert _add(db, clock) is False
    assert len(_rows(db)) == 1


def test_success_is_recorded_with_the_provider_id(sentinel_url, clock):
    db = Database(sentinel_url)
    _add(db, clock)
    sent = []
    dispatcher = Dispatcher(
        db, {"sms": lambda item: sent.append(item) or R(True, provider_id="SM1")}, clock
    )
    assert dispatcher.run_once() == 1
    assert dispatcher.run_once() == 0
    (row,) = _rows(db)
    assert row.status is NotificationStatus.sent and row.provider_id == "SM1"
    assert sent[0].payload == {"text": "[P1] disk full"} and sent[0].attempt == 1


def test_retries_back_off_honour_retry_after_and_give_up(sentinel_url, clock):
    db = Database(sentinel_url)
    _add(db, clock)
    answers = iter(
        [R(False, error="502"), R(False, retry_after=60, error="429"), R(False, error="502")]
    )
    dispatcher = Dispatcher(
        db,
        {"sms": lambda item: next(answers)},
        clock,
        RetryPolicy(max_attempts=3, backoff_seconds=2),
    )
    dispatcher.run_once()
    assert _rows(db)[0].next_attempt_at == clock.now() + timedelta(seconds=2)
    assert dispatcher.run_once() == 0  # not due yet
    clock.advance(seconds=2)
    dispatcher.run_once()
    assert _rows(db)[0].next_attempt_at == clock.now() + timedelta(seconds=60)  # Retry-After
    clock.advance(seconds=60)
    dispatcher.run_once()
    (row,) = _rows(db)
    assert row.status is NotificationStatus.failed and row.attempts == 3
    with db.session() as s:
        assert [a.error for a in s.scalars(select(DeliveryAttempt))] == ["502", "429", "502"]


def test_permanent_errors_and_crashing_channels(sentinel_url, clock):
    db = Database(sentinel_url)
    _add(db, clock, key="k1", channel="sms")
    _add(db, clock, key="k2", channel="slack")
    _add(db, clock, key="k3", channel="pigeon")

    def crash(item):
        raise RuntimeError("bug in the channel")

    Dispatcher(
        db,
        {"sms": lambda item: R(False, retryable=False, error="21211 bad number"), "slack": crash},
        clock,
    ).run_once()
    by_key = {r.key: r for r in _rows(db)}
    assert by_key["k1"].status is NotificationStatus.failed
    assert by_key["k2"].status is NotificationStatus.pending  # retried later
    assert "bug in the channel" in by_key["k2"].last_error
    assert by_key["k3"].status is NotificationStatus.failed
    assert by_key["k3"].last_error == "no channel 'pigeon'"


def test_an_orphaned_claim_is_taken_over_after_its_lease(sentinel_url, clock):
    db = Database(sentinel_url)
    _add(db, clock)
    (lost,) = claim(db, clock.now(), timedelta(minutes=2), 10)  # a dispatcher that then died
    assert claim(db, clock.now() + timedelta(minutes=1), timedelta(minutes=2), 10) == []
    clock.advance(minutes=3)
    sent = []
    Dispatcher(db, {"sms": lambda item: sent.append(item.attempt) or R(True)}, clock).run_once()
    assert sent == [2]
    assert record(db, lost, R(True), clock.now(), RetryPolicy()) is None  # stale claim refused
    assert _rows(db)[0].status is NotificationStatus.sent


def test_dispatcher_killed_mid_send_loses_nothing(sentinel_url, clock, tmp_path):
    db = Database(sentinel_url)
    for i in range(3):
        _add(db, clock, key=f"n{i}")
    delivered = tmp_path / "delivered.txt"
    started = tmp_path / "started"
    child = textwrap.dedent(f"""
        import time
        from datetime import datetime, timedelta, timezone
        from common.clock import FakeClock
        from sentinel.alerting.dispatcher import Dispatcher
        from sentinel.db import Database

        class R:
            ok, retryable, status = True, False, "sent"
            provider_id = retry_after = error = None

        def send(item):
            with open({str(delivered)!r}, "a") as fh:
                fh.write(item.key + "\\n")
            open({str(started)!r}, "w").close()
            time.sleep(60)  # killed here, after the provider accepted the first message
            return R()

        clock = FakeClock(datetime.fromisoformat({clock.now().isoformat()!r}))
        Dispatcher(Database({sentinel_url!r}), {{"sms": send}}, clock,
                   lease=timedelta(minutes=2)).run_once()
    """)
    proc = subprocess.Popen([sys.executable, "-c", child], cwd=os.getcwd())
    deadline = time.monotonic() + 60
    while not started.exists():
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)

    clock.advance(minutes=3)  # the dead dispatcher's lease runs out

    def send(item):
        with open(delivered, "a") as fh:
            fh.write(item.key + "\n")
        return R(True)

    Dispatcher(db, {"sms": send}, clock).run_once()
    lines = delivered.read_text().split()
    assert sorted(set(lines)) == ["n0", "n1", "n2"]  # nothing lost
    assert len(lines) == 4 and lines.count("n0") == 2  # one duplicate, at most
    assert {r.status for r in _rows(db)} == {NotificationStatus.sent}


def test_dispatch_through_a_real_channel_writes_the_console_outbox(sentinel_url, clock, tmp_path):
    import io
    import json

    from sentinel.alerting.channels.outbox_console import ConsoleChannel
    from sentinel.alerting.outbox import via

    db = Database(sentinel_url)
    with db.session() as s:
        enqueue(
            s,
            "a7:step0:alice:console",
            "console",
            "alice",
            {
                "text": "[P1] payments.failed{method=wallet} FIRING: 6",
                "severity": "P1",
                "state": "firing",
                "fingerprint": "abc",
            },
            clock.now(),
        )
    screen = io.StringIO()
    outbox_file = tmp_path / "outbox.jsonl"
    Dispatcher(db, {"console": via(ConsoleChannel(screen, outbox_file))}, clock).run_once()
    assert "payments.failed{method=wallet} FIRING" in screen.getvalue()
    (line,) = outbox_file.read_text().splitlines()
    assert json.loads(line)["recipient"] == "alice"
    assert _rows(db)[0].status is NotificationStatus.sent


def test_drain_sends_everything_once_with_many_workers(sentinel_url, clock):
    import threading

    db = Database(sentinel_url)
    for i in range(120):
        _add(db, clock, key=f"n{i}")
    seen: list[str] = []
    lock = threading.Lock()

    def send(item):
        with lock:
            seen.append(item.key)
        return R(True, provider_id=f"SM{item.id}")

    dispatcher = Dispatcher(db, {"sms": send}, clock, batch=25, workers=4)
    assert dispatcher.drain() == 120
    dispatcher.close()
    assert sorted(seen) == sorted(f"n{i}" for i in range(120))
    assert {r.status for r in _rows(db)} == {NotificationStatus.sent}


def test_an_edit_waits_for_the_message_it_edits(sentinel_url, clock):
    db = Database(sentinel_url)
    with db.session() as s:
        enqueue(s, "post", "slack", "#ops", {"text": "firing", "ref": "group:1"}, clock.now())
    order: list[tuple[str, str | None]] = []

    def send(item):
        order.append((item.key, item.payload.get("slack_ts")))
        return R(True, provider_id="1700000000.000100")

    dispatcher = Dispatcher(db, {"slack": send}, clock, workers=4)
    dispatcher.drain()
    with db.session() as s:
        enqueue(s, "edit", "slack", "#ops", {"text": "acked", "ref": "group:1"}, clock.now())
    dispatcher.drain()
    dispatcher.close()
    assert order == [("post", None), ("edit", "1700000000.000100")]
