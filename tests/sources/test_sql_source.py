"""The sql source and its backfill, on a translator database filled through
the translator's own API and services (run on SQLite and on PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text

from common.db import make_engine
from sentinel.sources import (
    Reading,
    SourceContext,
    SqlSource,
    backfill,
    build_source,
    parse_source_config,
)
from sentinel.sources.sql import (
    FAILED_PAYMENTS_RATIO_SQL,
    FAILED_PAYMENTS_SQL,
    JOB_PROCESSING_SECONDS_SQL,
    JOBS_PROCESSING_VS_CAPACITY_SQL,
    QUEUE_DEPTH_SQL,
    QUEUE_LAG_SQL,
    read_only_transaction,
)
from tests.conftest import BACKEND
from tests.helpers import add_user
from tests.sources.conftest import closed_port
from translator.jobs import queue
from translator.metrics import queue_snapshot

TEN_MIN = timedelta(minutes=10)


def _pay(api, headers, method: str, token: str) -> None:
    r = api.post(
        "/api/payments/checkout",
        headers=headers,
        json={"plan": "basic", "method": method, "token": token},
    )
    assert r.status_code in (201, 402), r.text


def _upload(api, headers, name: str = "a.txt") -> int:
    r = api.post("/api/files", headers=headers, files={"file": (name, b"Hello world")})
    assert r.status_code == 201, r.text
    return r.json()["job_id"]


def _points(reading: Reading) -> dict:
    assert reading.ok, reading.no_data
    return {dict(p.labels).get("method", ""): (p.value, p.volume) for p in reading.points}


def test_failed_payments_count_and_ratio_by_method(api, svc, clock, ro_engine):
    _, h = add_user(svc, "a@example.com")
    t0 = clock.now()
    for method, token in [
        ("card", "tok_visa"),
        ("card", "tok_visa"),
        ("card", "tok_declined"),
        ("wallet", "wallet_ok"),
        ("wallet", "wallet_auth_failed"),
        ("wallet", "wallet_cancelled"),
    ]:
        _pay(api, h, method, token)
    clock.advance(minutes=1)
    count = SqlSource(ro_engine, FAILED_PAYMENTS_SQL, TEN_MIN)
    ratio = SqlSource(ro_engine, FAILED_PAYMENTS_RATIO_SQL, TEN_MIN)

    reading = count.read(clock.now())
    assert reading.t == clock.now()
    assert _points(reading) == {"card": (1, 3), "wallet": (2, 3)}
    assert [p.labels for p in reading.points] == [(("method", "card"),), (("method", "wallet"),)]
    shares = _points(ratio.read(clock.now()))
    assert shares["card"] == (pytest.approx(1 / 3), 3)
    assert shares["wallet"] == (pytest.approx(2 / 3), 3)

    # The window is [now - window, now): the payments at t0 are in a window starting
    # at t0 and not in one ending at t0 (this checks the bound timestamps' format too).
    assert _points(count.read(t0 + TEN_MIN)) == {"card": (1, 3), "wallet": (2, 3)}
    assert _points(count.read(t0)) == {"card": (0, 0), "wallet": (0, 0)}
    # A quiet window: zero failures out of zero for the count, no ratio at all.
    later = clock.now() + timedelta(days=1)
    assert _points(count.read(later)) == {"card": (0, 0), "wallet": (0, 0)}
    quiet = ratio.read(later)
    assert not quiet.ok and quiet.points == () and "no rows" in quiet.no_data


def test_queue_lag_and_depth_agree_with_the_translator(api, svc, clock, ro_engine):
    _, h = add_user(svc, "a@example.com")
    t0 = clock.now()
    for i in range(3):
        _upload(api, h, f"f{i}.txt")
    clock.advance(seconds=30)
    _upload(api, h, "late.txt")
    clock.advance(seconds=60)
    assert svc.processor.run_once("w1")  # the oldest job leaves the queue at t0 + 90s
    lag = SqlSource(ro_engine, QUEUE_LAG_SQL, TEN_MIN)
    depth = SqlSource(ro_engine, QUEUE_DEPTH_SQL, TEN_MIN)

    now = clock.now()
    snapshot = queue_snapshot(svc.db, now)
    (point,) = lag.read(now).points
    assert (point.labels, point.value, point.volume) == ((), 90.0, 3)
    assert point.value == snapshot["oldest_age_seconds"] and point.volume == snapshot["queued"]
    assert depth.read(now).points[0].value == 3

    # The past queue, from enqueued_at/claimed_at: a backfill sees it fill up and drain.
    history = backfill(lag, t0 - timedelta(seconds=30), now, timedelta(seconds=30))
    assert [r.t for r in history] == [t0 + timedelta(seconds=s) for s in (-30, 0, 30, 60, 90)]
    assert [(r.points[0].value, r.points[0].volume) for r in history] == [
        (0, 0),
        (0, 3),
        (30, 4),
        (60, 4),
        (90, 3),
    ]

    svc.workers.drain()
    (empty,) = lag.read(clock.now()).points
    assert (empty.value, empty.volume) == (0, 0)


def test_processing_vs_capacity_and_processing_time(api, svc, clock, ro_engine):
    _, h = add_user(svc, "a@example.com")
    t0 = clock.now()
    for i in range(3):
        _upload(api, h, f"f{i}.txt")
    with svc.db.session() as s:
        first = queue.claim(s, "w1", clock.now())
        second = queue.claim(s, "w2", clock.now())
    clock.advance(seconds=30)
    assert svc.processor.process(first) == "completed"  # took 30 s
    clock.advance(seconds=10)
    busy = SqlSource(ro_engine, JOBS_PROCESSING_VS_CAPACITY_SQL, TEN_MIN, params={"capacity": 4})
    (point,) = busy.read(clock.now()).points
    assert (point.value, point.volume) == (0.25, 4)
    (before,) = busy.read(t0 - timedelta(seconds=1)).points
    assert before.value == 0
    (during,) = busy.read(t0 + timedelta(seconds=10)).points
    assert during.value == 0.5

    clock.advance(seconds=10)
    assert svc.processor.process(second) == "completed"  # took 50 s
    clock.advance(seconds=10)
    took = SqlSource(ro_engine, JOB_PROCESSING_SECONDS_SQL, timedelta(minutes=1))
    (avg,) = took.read(clock.now()).points
    assert avg.value == pytest.approx(40.0) and avg.volume == 2
    recent = SqlSource(ro_engine, JOB_PROCESSING_SECONDS_SQL, timedelta(seconds=15))
    assert recent.read(clock.now()).points[0].value == pytest.approx(50.0)
    nothing = took.read(clock.now() + timedelta(hours=1))
    assert not nothing.ok and "NULL" in nothing.no_data


def test_backfill_steps_through_past_windows(api, svc, clock, ro_engine):
    _, h = add_user(svc, "a@example.com")
    t0 = clock.now()
    _pay(api, h, "card", "tok_declined")
    clock.advance(TEN_MIN)
    _pay(api, h, "wallet", "wallet_auth_failed")
    _pay(api, h, "wallet", "wallet_cancelled")
    clock.advance(TEN_MIN)
    _pay(api, h, "card", "tok_visa")
    source = build_source(
        parse_source_config({"type": "sql", "query": FAILED_PAYMENTS_SQL, "window_seconds": 600}),
        SourceContext(translator_engine=ro_engine),
        signal="payments.failed",
    )
    readings = backfill(source, t0 + TEN_MIN, t0 + 3 * TEN_MIN, TEN_MIN)
    assert [r.t for r in readings] == [t0 + TEN_MIN, t0 + 2 * TEN_MIN, t0 + 3 * TEN_MIN]
    assert [_points(r) for r in readings] == [
        {"card": (1, 1), "wallet": (0, 0)},
        {"card": (0, 0), "wallet": (2, 2)},
        {"card": (0, 1), "wallet": (0, 0)},
    ]
    with pytest.raises(ValueError, match="before start"):
        backfill(source, t0, t0 - TEN_MIN, TEN_MIN)
    with pytest.raises(ValueError, match="larger step"):
        backfill(source, t0, t0 + timedelta(days=400), timedelta(seconds=1))


def test_the_read_only_connection_refuses_writes(database_url, svc, ro_engine):
    with pytest.raises(Exception) as caught, ro_engine.begin() as conn:
        conn.execute(text("DELETE FROM subscription_plans"))
    assert "read" in str(caught.value).lower()  # "readonly database" / "read-only transaction"

    # Defence in depth: even on a writable engine the source's transaction cannot write.
    writable = make_engine(database_url)
    try:
        with pytest.raises(Exception) as caught, writable.connect() as conn:  # noqa: SIM117
            with read_only_transaction(conn, 5):
                conn.execute(text("DELETE FROM subscription_plans"))
        assert "read" in str(caught.value).lower()
        with writable.connect() as conn:
            assert conn.execute(text("SELECT COUNT(*) FROM subscription_plans")).scalar() > 0
    finally:
        writable.dispose()


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("SELECT COUNT(*) AS value FROM no_such_table", "query failed"),
        ("SELECT * FROM subscription_plans", "no 'value' column"),
        ("SELECT code AS value FROM subscription_plans WHERE code = 'basic'", "not a number"),
        ("SELECT 1 AS value, 'x' AS method UNION ALL SELECT 2, 'x'", "same labels"),
        ("SELECT code, NULL AS value FROM subscription_plans WHERE code = 'basic'", "NULL"),
        ("SELECT id AS value, code FROM subscription_plans WHERE id < 0", "no rows"),
        ("SELECT id AS value, code FROM subscription_plans", "more than 2 rows"),
    ],
)
def test_bad_results_are_no_data_with_the_reason(ro_engine, clock, sql, reason):
    reading = SqlSource(ro_engine, sql, TEN_MIN, max_rows=2).read(clock.now())
    assert reading.points == () and reason in reading.no_data, reading.no_data


def test_a_slow_query_is_stopped_by_the_timeout(ro_engine, clock):
    slow = (
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 1000000000) "
        "SELECT COUNT(*) AS value FROM r"
    )
    reading = SqlSource(ro_engine, slow, TEN_MIN, timeout_seconds=0.2).read(clock.now())
    assert reading.no_data == "query timed out after 0.2s"
    # The connection is still good afterwards.
    assert SqlSource(ro_engine, "SELECT 1 AS value", TEN_MIN).read(clock.now()).ok


def test_an_unreachable_database_is_no_data(tmp_path, clock):
    if BACKEND == "postgres":
        url = "postgresql://127.0.0.1:1/nothing"
    else:
        url = f"sqlite:///{tmp_path / 'missing' / 'gone.db'}"
    engine = make_engine(
        url, read_only=True, **({"pool_pre_ping": False} if "sqlite" in url else {})
    )
    try:
        source = SqlSource(engine, "SELECT 1 AS value", TEN_MIN, database_url=url)
        reading = source.read(clock.now())
        assert reading.points == ()
        assert reading.no_data.startswith("database translator cannot be read: ")
        # The fault names the source, the same for every signal on it, with its URL.
        [fault] = reading.faults
        assert fault.source == "database translator" and url in fault.reason
        readings = SqlSource(engine, "SELECT 1 AS value", TEN_MIN).read_range(
            clock.now(), clock.now() + TEN_MIN, TEN_MIN
        )
        assert [r.no_data.startswith("query failed") for r in readings] == [True, True]
    finally:
        engine.dispose()


def test_params_bind_and_missing_params_are_refused(ro_engine, clock):
    source = SqlSource(
        ro_engine,
        "SELECT COUNT(*) AS value FROM subscription_plans WHERE code = :plan",
        TEN_MIN,
        params={"plan": "basic"},
    )
    assert source.read(clock.now()).points[0].value == 1
    with pytest.raises(ValueError, match=":plan"):
        SqlSource(ro_engine, "SELECT 1 AS value WHERE :plan = 'x'", TEN_MIN)


def test_a_database_that_cannot_be_opened_is_named_without_its_password(clock):
    """A PostgreSQL server nobody listens on, reached with a password: the fault names
    the database and the server, and never the password."""
    url = f"postgresql://vigil:s3cret-pw@127.0.0.1:{closed_port()}/translator"
    engine = make_engine(url, read_only=True)
    try:
        source = SqlSource(engine, "SELECT 1 AS value", TEN_MIN, database="billing")
        [fault] = source.read(clock.now()).faults
        assert fault.source == "database billing"
        assert "s3cret-pw" not in fault.reason and "s3cret-pw" not in source.where
        assert "127.0.0.1" in fault.reason and "refused" in fault.reason.lower()
    finally:
        engine.dispose()
