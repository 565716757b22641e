"""A source that cannot be read is one alert about the source, and start order does
not matter: the sentinel with the default catalogue on an injected clock, its
translator's database unreadable (a SQLite file that does not exist, or a
PostgreSQL database that does not), then readable."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select, text

from common.clock import FakeClock
from common.db import normalize_url
from sentinel.api import create_app
from sentinel.catalogue import Catalogue, load_catalogue
from sentinel.models import Alert, AlertState, Notification
from sentinel.service import Sentinel, build_sentinel
from sentinel.settings import DEFAULT_CATALOGUE, SentinelSettings
from sentinel.source_health import SOURCE_SIGNAL
from tests.conftest import BACKEND, POSTGRES_URL, _server_url
from tests.helpers import make_services
from tests.sources.conftest import closed_port, serve
from translator.db import Database as TranslatorDatabase

PERSONAL = ("sms", "voice")


@contextlib.contextmanager
def missing_database(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A translator database URL that cannot be opened yet, and how it is named in
    a page: a SQLite file that does not exist, or a PostgreSQL database not created."""
    if BACKEND != "postgres":
        path = tmp_path / "later" / "translator.db"
        yield f"sqlite:///{path}", "unable to open database file"
        return
    name = f"vigil_missing_{tmp_path.name[-12:].lower().replace('-', '_')}"
    admin = create_engine(normalize_url(POSTGRES_URL), isolation_level="AUTOCOMMIT")
    try:
        yield _server_url(POSTGRES_URL, name), f'database "{name}" does not exist'
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def make_readable(url: str) -> None:
    """What starting the translator does to its database: create and migrate it."""
    if url.startswith("postgresql"):
        admin = create_engine(normalize_url(POSTGRES_URL), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{url.rsplit("/", 1)[1]}"'))
        admin.dispose()
    db = TranslatorDatabase(url)
    db.migrate()
    db.dispose()


def sql_signals_only() -> Catalogue:
    """The default catalogue's signals that read the translator's database."""
    full = load_catalogue(DEFAULT_CATALOGUE)
    return Catalogue(signals=[s for s in full.signals if s.source.type == "sql"])


def build(
    sentinel_url: str,
    translator_url: str,
    tmp_path: Path,
    clock: FakeClock,
    catalogue: Catalogue | None = None,
    **settings: object,
) -> Sentinel:
    values: dict[str, object] = {
        "database_url": sentinel_url,
        "translator_database_url": translator_url,
        "outbox_file": tmp_path / "outbox.jsonl",
        "translator_log_file": tmp_path / "translator.log",
        "scrape_targets": [f"http://127.0.0.1:{closed_port()}/metrics"],
        "node_targets": [f"http://127.0.0.1:{closed_port()}/metrics"],
        **settings,
    }
    return build_sentinel(
        SentinelSettings(**values),  # type: ignore[arg-type]
        clock=clock,
        catalogue=catalogue,
        migrate=False,
    )


def run_for(sentinel: Sentinel, clock: FakeClock, seconds: float, step: float = 5) -> None:
    end = clock.now() + timedelta(seconds=seconds)
    while clock.now() < end:
        sentinel.cycle()
        clock.advance(seconds=step)


def pages(sentinel: Sentinel) -> list[Notification]:
    """Notifications to a person's phone (SMS, calls), in order."""
    with sentinel.db.session() as s:
        return list(
            s.scalars(
                select(Notification)
                .where(Notification.channel.in_(PERSONAL), Notification.person.is_not(None))
                .order_by(Notification.id)
            ).all()
        )


def source_alerts(sentinel: Sentinel) -> list[Alert]:
    with sentinel.db.session() as s:
        return list(
            s.scalars(select(Alert).where(Alert.signal == SOURCE_SIGNAL).order_by(Alert.id)).all()
        )


@pytest.fixture
def clock() -> FakeClock:
    # Monday 12:00 UTC: business hours in Moscow, sysadmin-1 answers.
    return FakeClock()


def test_an_unreadable_database_pages_once_naming_it_and_resolves_when_readable(
    sentinel_url: str, tmp_path: Path, clock: FakeClock
) -> None:
    with missing_database(tmp_path) as (url, words):
        sentinel = build(
            sentinel_url, url, tmp_path, clock, catalogue=sql_signals_only(),
            startup_grace_seconds=60,
        )  # fmt: skip
        try:
            run_for(sentinel, clock, 50)
            assert pages(sentinel) == []  # the start-up grace: the translator may be starting

            run_for(sentinel, clock, 4 * 60)  # well past every signal's no-data window
            sent = pages(sentinel)
            # queue.lag_seconds' no-data would have called (P1): one call and one SMS.
            assert sorted(p.channel for p in sent) == ["sms", "voice"], [
                (p.channel, p.payload["text"]) for p in sent
            ]
            for page in sent:
                assert "source.down{source=database translator}" in page.payload["text"]
                assert words in page.payload["text"]
            [page] = [p for p in sent if p.channel == "voice"]
            said = page.payload["spoken"]  # said aloud: no quotes, no underscores
            assert "database translator" in said
            assert " ".join(words.replace('"', "").replace("_", " ").split()) in said
            assert "password" not in json.dumps(page.payload)

            # Every SQL signal that alerts on no data has its own no-data alert, muted by it.
            with sentinel.db.session() as s:
                no_data = s.scalars(select(Alert).where(Alert.state == AlertState.no_data)).all()
                assert {a.signal for a in no_data} >= {"queue.lag_seconds", "queue.depth"}
            group = sentinel_groups(sentinel)
            muted_notes = " ".join(g["text"] for g in group)
            assert "source.down" in muted_notes

            make_readable(url)
            run_for(sentinel, clock, 60)
            alerts = source_alerts(sentinel)
            assert [a.state for a in alerts] == [AlertState.resolved]
            after = pages(sentinel)[len(sent):]
            # Whoever was paged hears it is over; nobody is paged for the signals.
            assert [p.payload["state"] for p in after] == ["resolved"]
            with sentinel.db.session() as s:
                assert (
                    s.scalars(select(Alert.signal).where(Alert.state == AlertState.no_data)).all()
                    == []
                )
        finally:
            sentinel.close()


def sentinel_groups(sentinel: Sentinel) -> list[dict[str, str]]:
    """The Slack-sized words each group last broadcast (muted groups say why)."""
    with sentinel.db.session() as s:
        rows = s.scalars(
            select(Notification).where(Notification.channel == "slack").order_by(Notification.id)
        ).all()
        return [{"text": r.payload.get("detail", "")} for r in rows]


def test_a_signal_whose_own_data_stops_keeps_its_no_data_page(
    sentinel_url: str, database_url: str, tmp_path: Path, clock: FakeClock
) -> None:
    """The database answers, but one signal's query fails: that is the signal's own
    problem, paged as its own no-data, with no source alert."""
    catalogue = sql_signals_only()
    broken = next(s for s in catalogue.signals if s.name == "queue.depth")
    source = broken.source.model_copy(
        update={"query": "SELECT COUNT(*) AS value FROM no_such_table"}
    )
    at = catalogue.signals.index(broken)
    catalogue.signals[at] = broken.model_copy(update={"source": source})
    sentinel = build(sentinel_url, database_url, tmp_path, clock, catalogue=catalogue)
    try:
        run_for(sentinel, clock, 4 * 60)
        assert source_alerts(sentinel) == []
        sent = pages(sentinel)
        assert len(sent) == 1
        assert "queue.depth" in sent[0].payload["text"]
        assert "NO DATA" in sent[0].payload["text"]
    finally:
        sentinel.close()


def test_started_before_the_translator_it_stays_quiet_then_judges(
    sentinel_url: str, tmp_path: Path, clock: FakeClock
) -> None:
    """The default catalogue, the translator (database and /metrics) started a minute
    after the sentinel: no page in the first ten minutes (it was four), and the signal
    API states the grace while it lasts."""
    port = closed_port()
    with missing_database(tmp_path) as (url, _words):
        sentinel = build(
            sentinel_url, url, tmp_path, clock,
            scrape_targets=[f"http://127.0.0.1:{port}/metrics"],
        )  # fmt: skip
        try:
            api = TestClient(create_app(sentinel, run_loop=False))

            def grace() -> dict:
                return api.get("/api/signals/queue.lag_seconds").json()["grace"]

            run_for(sentinel, clock, 60)
            assert grace()["in_grace"] and "waiting for database translator" in grace()["reason"]
            assert grace()["startup_grace_seconds"] == 120 and grace()["warmup_seconds"] == 60
            make_readable(url)
            services = make_services(url, tmp_path, clock)
            try:
                with serve(services, port):
                    run_for(sentinel, clock, 20)
                    assert grace()["in_grace"] and "answered first" in grace()["reason"]
                    run_for(sentinel, clock, 9 * 60 - 20)
                    assert not grace()["in_grace"] and grace()["until"] is None
            finally:
                services.close()
            sent = pages(sentinel)
            assert [(p.channel, p.payload["text"]) for p in sent] == []
            assert source_alerts(sentinel) == []
        finally:
            sentinel.close()


def _health(**policies: str):  # type: ignore[no-untyped-def]
    from sentinel.catalogue.models import SignalSpec
    from sentinel.source_health import SourceHealth

    specs = {
        name: SignalSpec.model_validate(
            {
                "name": name,
                "description": name,
                "kind": "level",
                "severity": "P1" if policy == "alert" else "P2",
                "no_data": policy,
                "labels": {"service": "translator", "team": name.split(".")[0]},
                "source": {"type": "push"},
            }
        )
        for name, policy in policies.items()
    }
    return SourceHealth(
        signals=specs,
        dependencies={name: ("database translator",) for name in specs},
        startup_grace=timedelta(seconds=60),
        warmup=timedelta(seconds=30),
        down_after=timedelta(seconds=30),
    )


def _read(health, clock: FakeClock, ok: bool, *signals: str) -> None:  # type: ignore[no-untyped-def]
    from sentinel.sources.base import Reading, SeriesPoint, SourceFault

    for signal in signals:
        if ok:
            reading = Reading(clock.now(), (SeriesPoint((), 1.0),))
        else:
            fault = SourceFault("database translator", "unable to open database file")
            reading = Reading.empty(clock.now(), "cannot be read", (fault,))
        health.observe(signal, reading, clock.now())


def test_a_blip_shorter_than_down_after_pends_then_cancels(clock: FakeClock) -> None:
    health = _health(**{"queue.lag": "alert", "payments.failed": "ok"})
    _read(health, clock, True, "queue.lag", "payments.failed")
    assert health.settle(clock.now()) == []
    clock.advance(seconds=5)
    _read(health, clock, False, "queue.lag")
    assert health.settle(clock.now()) == [("database translator", AlertState.pending)]
    clock.advance(seconds=20)
    _read(health, clock, True, "payments.failed")  # any signal on it answering is enough
    assert health.settle(clock.now()) == [("database translator", AlertState.cancelled)]
    clock.advance(seconds=5)
    _read(health, clock, False, "queue.lag")
    health.settle(clock.now())
    clock.advance(seconds=30)
    _read(health, clock, False, "queue.lag")
    assert health.settle(clock.now()) == [("database translator", AlertState.firing)]
    # Loud as the loudest no-data it stands for; the labels its signals share.
    source = health.sources["database translator"]
    assert source.severity == "P1" and source.labels == {"service": "translator"}


def test_a_source_whose_signals_accept_no_data_raises_nothing(clock: FakeClock) -> None:
    """Like host signals without a node exporter: no data is how a laptop runs."""
    health = _health(**{"host.cpu": "ok", "host.disk": "keep"})
    for _ in range(30):
        _read(health, clock, False, "host.cpu", "host.disk")
        assert health.settle(clock.now()) == []
        clock.advance(seconds=10)
    assert health.grace("host.cpu", clock.now()) is None  # judged as usual after the grace
