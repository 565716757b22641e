"""Alert storm benchmark, one command:

    .venv/bin/python bench/alert_storm.py [--alerts 10000] [--groups 50] [--postgres URL]

1. Grouping under a storm: 10,000 alerts fire within one simulated minute
   across 50 groups (50 services), while the leader's pipeline runs every
   simulated second, as it does live. Reports how many notifications went
   out per channel (target: one per group per channel per group interval),
   whether every alert ended up in a group and in its group's last message
   (none lost), and the pipeline's own time. Baseline in the same run: what
   a per-alert pager (one notification per alert per channel, as without
   grouping) would have sent.
2. Dispatcher throughput to the fake Twilio server (the real ``twilio``
   client over loopback HTTP, the server in a process of its own): N queued
   SMS notifications claimed, sent and recorded, by one dispatcher process
   and by two (`sentinel serve` beside one `sentinel deliver`; claims are
   leased, so they never collide). Target:
   at least 500 notifications/s. Baselines in the same run: the sequential
   dispatcher (one worker), and the bare client in one process sending the
   same messages with no outbox at all.

Time in part 1 comes from an injected clock; part 2 is wall-clock, median of
three runs. The machine is shared: compare the ratios, not the absolutes."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing import get_context
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.pop("TWILIO_REGION", None)
os.environ.pop("TWILIO_EDGE", None)

from sqlalchemy import func, insert, select  # noqa: E402
from twilio.rest import Client  # noqa: E402

from common.clock import FakeClock  # noqa: E402
from sentinel.alerting.channels.twilio_sms import TwilioSmsChannel  # noqa: E402
from sentinel.alerting.config import parse_alerting_config  # noqa: E402
from sentinel.alerting.dispatcher import Dispatcher  # noqa: E402
from sentinel.alerting.models import AlertGroup  # noqa: E402
from sentinel.alerting.notifier import Notifier  # noqa: E402
from sentinel.alerting.outbox import Outgoing, enqueue, via  # noqa: E402
from sentinel.alerts import fingerprint  # noqa: E402
from sentinel.db import Database  # noqa: E402
from sentinel.models import Alert, AlertTransition, Notification, NotificationStatus  # noqa: E402
from tests.fakes.twilio_server import ACCOUNT_SID, AUTH_TOKEN  # noqa: E402

CONFIG = """
people:
  oncall: {phone: "+15550000001", slack: U0ONCALL}
policies:
  page:
    steps:
      - notify: {people: [oncall]}
        channels: [sms]
        wait_minutes: 30
    broadcast: [{channel: slack, to: "#ops"}]
routes:
  - name: storm
    policy: page
    group_by: [service]
    group_wait_seconds: 30
    group_interval_seconds: 300
"""


def _database(postgres: str | None, tmp: Path, label: str) -> Database:
    if postgres:
        from sqlalchemy import create_engine, text

        from common.db import normalize_url

        admin = create_engine(normalize_url(postgres), isolation_level="AUTOCOMMIT")
        name = f"vigil_bench_{label}_{os.getpid()}"
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        url = normalize_url(postgres).rsplit("/", 1)[0] + "/" + name
    else:
        url = f"sqlite:///{tmp / f'{label}.db'}"
    db = Database(url)
    db.migrate()
    return db


def _fire(db: Database, now: datetime, first: int, count: int, groups: int) -> None:
    """``count`` new firing alerts, written as the alert book writes them."""
    alerts, transitions = [], []
    with db.session() as s:
        base = int(s.scalar(select(func.coalesce(func.max(Alert.id), 0))) or 0)
        for i in range(first, first + count):
            service = f"svc{i % groups:02d}"
            series = f"route=/r{i},service={service}"
            alerts.append(
                {
                    "id": base + len(alerts) + 1,
                    "fingerprint": fingerprint("http.error_ratio", series),
                    "signal": "http.error_ratio",
                    "series": series,
                    "labels": {"signal": "http.error_ratio", "service": service, "route": f"/r{i}"},
                    "severity": "P1",
                    "source": "sentinel",
                    "state": "firing",
                    "summary": f"[P1] http.error_ratio{{route=/r{i},service={service}}} FIRING",
                    "evidence": {},
                    "started_at": now,
                    "firing_at": now,
                    "updated_at": now,
                    "reopened": 0,
                }
            )
        for row in alerts:
            transitions.append(
                {
                    "alert_id": row["id"],
                    "from_state": None,
                    "to_state": "firing",
                    "at": now,
                    "evidence": {},
                }
            )
        s.execute(insert(Alert), alerts)
        s.execute(insert(AlertTransition), transitions)


def storm(args: argparse.Namespace, tmp: Path) -> None:
    db = _database(args.postgres, tmp, "storm")
    clock = FakeClock(datetime(2026, 1, 5, 12, 0, tzinfo=UTC))
    notifier = Notifier(db, parse_alerting_config(CONFIG), clock)
    # Part 1 counts what the pipeline decides; an instant channel stands in for
    # the providers so that sent messages are edited in place, as live.
    delivered = {name: _accept for name in ("sms", "slack")}
    dispatcher = Dispatcher(db, delivered, clock, batch=500)
    per_second = args.alerts / 60
    fired, pipeline_seconds, runs = 0, [], 0
    for second in range(60 + 31):  # the storm's minute, then group_wait runs out
        if second < 60:
            upto = round((second + 1) * per_second)
            _fire(db, clock.now(), fired, upto - fired, args.groups)
            fired = upto
        started = time.process_time()
        notifier.run_once()
        pipeline_seconds.append(time.process_time() - started)
        runs += 1
        while dispatcher.run_once():
            pass
        clock.advance(seconds=1)
    clock.advance(minutes=5)  # one group interval later: the updated messages
    notifier.run_once()
    while dispatcher.run_once():
        pass
    with db.session() as s:
        by_channel = dict(
            s.execute(
                select(Notification.channel, func.count())
                .where(Notification.status != NotificationStatus.bundled)
                .group_by(Notification.channel)
            ).all()
        )
        ungrouped = s.scalar(select(func.count()).where(Alert.group_id.is_(None)))
        group_count = s.scalar(select(func.count(AlertGroup.id)))
        last_texts = s.scalars(
            select(Notification.payload).where(Notification.channel == "slack")
        ).all()
    counted = sum(_alerts_in(text["text"]) for text in _latest_per_group(last_texts))
    print(
        f"\n## Storm: {fired} alerts in one minute, {args.groups} services, SQL "
        f"{'PostgreSQL' if args.postgres else 'SQLite'}"
    )
    print(f"groups opened                   {group_count}")
    print(f"alerts not in any group         {ungrouped}")
    print(f"alerts counted in last messages {counted} of {fired}")
    for channel, what in (("sms", "pages"), ("slack", "messages + edits")):
        sent = by_channel.get(channel, 0)
        print(
            f"{channel:<6} {what:<24} {sent:>6}   "
            f"(per-alert pager baseline: {fired}; {fired / max(sent, 1):,.0f}× fewer)"
        )
    sms_rate = by_channel.get("sms", 0) / group_count
    slack_rate = by_channel.get("slack", 0) / group_count / 2  # two intervals: first + one edit
    print(f"per group, channel and interval  sms {sms_rate:.1f}, slack {slack_rate:.1f}")
    median_ms = statistics.median(pipeline_seconds) * 1000
    print(
        f"pipeline CPU per run            median {median_ms:.1f} ms, "
        f"max {max(pipeline_seconds) * 1000:.0f} ms over {runs} runs"
    )
    db.dispose()


@dataclass(frozen=True)
class _Accepted:
    provider_id: str
    ok: bool = True
    retryable: bool = False
    retry_after: float | None = None
    error: str | None = None
    status: str = "sent"


def _accept(item: Outgoing) -> _Accepted:
    return _Accepted(provider_id=f"id{item.id}")


def _latest_per_group(payloads: list[dict]) -> list[dict]:
    latest: dict[str, dict] = {}
    for payload in payloads:
        latest[payload["fingerprint"]] = payload  # in id order: the last one wins
    return list(latest.values())


def _alerts_in(text: str) -> int:
    head = text.split(" alerts firing.", 1)[0]
    return int(head) if head.isdigit() else 1


@contextlib.contextmanager
def fake_twilio_process() -> Iterator[str]:
    """The fake Twilio in a process of its own, as the real one is on another
    machine: its request handling must not share our interpreter lock."""
    code = (
        "import sys, time\n"
        "from tests.fakes.twilio_server import FakeTwilioServer\n"
        "server = FakeTwilioServer().start()\n"
        "print(server.base_url, flush=True)\n"
        "sys.stdin.read()\n"
    )
    root = Path(__file__).resolve().parents[1]
    child = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=root,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        yield child.stdout.readline().strip()
    finally:
        child.kill()
        child.wait(10)


def throughput(args: argparse.Namespace, tmp: Path) -> None:
    print(f"\n## Dispatcher throughput: {args.messages} SMS to the fake Twilio (median of 3)")
    with fake_twilio_process() as base_url:
        client = Client(ACCOUNT_SID, AUTH_TOKEN)
        client.api.base_url = base_url
        rows = []
        for label, workers, processes in (
            ("dispatcher, 1 process, 1 worker", 1, 1),
            (f"dispatcher, 1 process, {args.workers} workers", args.workers, 1),
            (f"dispatcher, 2 processes, {args.workers} workers each", args.workers, 2),
        ):
            rates = []
            for run in range(3):
                db = _database(args.postgres, tmp, f"tp{workers}_{processes}_{run}")
                now = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
                with db.session() as s:
                    for i in range(args.messages):
                        enqueue(s, f"n{i}", "sms", "+15550000001", {"text": f"alert {i}"}, now)
                started = time.perf_counter()
                with ProcessPoolExecutor(processes, mp_context=get_context("fork")) as pool:
                    futures = [
                        pool.submit(_drain, db.url, base_url, workers) for _ in range(processes)
                    ]
                    attempted = sum(f.result() for f in futures)
                elapsed = time.perf_counter() - started
                with db.session() as s:
                    sent = s.scalar(
                        select(func.count()).where(Notification.status == NotificationStatus.sent)
                    )
                assert sent == args.messages == attempted, f"{sent} sent, {attempted} attempted"
                rates.append(args.messages / elapsed)
                db.dispose()
            rows.append((label, statistics.median(rates)))

        def bare(i: int) -> None:
            client.messages.create(to="+15550000001", from_="+15005550006", body=f"alert {i}")

        rates = []
        for _ in range(3):
            started = time.perf_counter()
            with ThreadPoolExecutor(args.workers) as pool:
                list(pool.map(bare, range(args.messages)))
            rates.append(args.messages / (time.perf_counter() - started))
        rows.append(
            (f"bare twilio client, 1 process, {args.workers} threads", statistics.median(rates))
        )
    bare = rows[-1][1]
    for label, rate in rows:
        print(f"{label:<46}{rate:>7.0f} notifications/s  ({rate / bare:.0%} of the bare client)")
    best = max(rate for label, rate in rows[:-1])
    print(f"target ≥ 500/s: {'met' if best >= 500 else 'NOT met'} (best {best:.0f}/s)")


def _drain(url: str, twilio_url: str, workers: int) -> int:
    """One dispatcher process: its own database pool and Twilio client."""
    logging.disable(logging.WARNING)
    client = Client(ACCOUNT_SID, AUTH_TOKEN)
    client.api.base_url = twilio_url
    db = Database(url)
    clock = FakeClock(datetime(2026, 1, 5, 12, 0, tzinfo=UTC))
    channel = via(TwilioSmsChannel(client, "+15005550006", None))
    dispatcher = Dispatcher(db, {"sms": channel}, clock, workers=workers, batch=200)
    try:
        return dispatcher.drain(max_items=10**9)
    finally:
        dispatcher.close()
        db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--alerts", type=int, default=10_000)
    parser.add_argument("--groups", type=int, default=50)
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--postgres", default=None, help="e.g. postgresql://127.0.0.1:5432/test")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        storm(args, Path(tmp))
        throughput(args, Path(tmp))


if __name__ == "__main__":
    main()
