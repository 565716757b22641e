"""The push store (validation, bounds, concurrent writers, stored in the
sentinel database) and the push source."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest

from sentinel.db import Database
from sentinel.sources import (
    PushSource,
    PushStore,
    PushValidationError,
    SourceConfigError,
    SourceContext,
    build_source,
    parse_source_config,
)
from sentinel.sources.push import PushBufferFull


@pytest.fixture
def sentinel_db(sentinel_url: str) -> Iterator[Database]:
    db = Database(sentinel_url)
    yield db
    db.dispose()


def test_latest_per_label_set_within_the_window(clock, sentinel_db):
    buffer = PushStore(sentinel_db)
    source = build_source(
        parse_source_config({"type": "push", "window_seconds": 60}),
        SourceContext(push_buffer=buffer),
        signal="orders.empty_lists",
    )
    t0 = clock.now()
    assert source.read(t0).no_data == "nothing pushed to orders.empty_lists in the last 60s"

    buffer.push("orders.empty_lists", 3, {"city": "msk"}, t0 - timedelta(seconds=90))
    buffer.push("orders.empty_lists", 5, {"city": "msk"}, t0 - timedelta(seconds=30), volume=50)
    buffer.push("orders.empty_lists", 7, {"city": "spb"}, t0)  # at "now": included
    buffer.push("orders.empty_lists", 1, None, t0 + timedelta(seconds=1))  # after now: not yet
    buffer.push("other.signal", 9, None, t0)
    reading = source.read(t0)
    assert [(p.labels, p.value, p.volume) for p in reading.points] == [
        ((("city", "msk"),), 5.0, 50.0),
        ((("city", "spb"),), 7.0, None),
    ]
    # Same timestamp twice: the later arrival wins.
    buffer.push("orders.empty_lists", 8, {"city": "spb"}, t0)
    assert reading.points[1].value == 7 and source.read(t0).points[1].value == 8
    gone = source.read(t0 + timedelta(minutes=5))
    assert gone.points == () and "nothing pushed" in gone.no_data


def test_a_value_pushed_to_one_replica_is_read_by_another(clock, sentinel_url):
    """Two replicas, two connection pools, one database: the standby stores the
    push, the leader reads it, and it outlives the replica that took it."""
    standby_db, leader_db = Database(sentinel_url), Database(sentinel_url)
    standby, leader = PushStore(standby_db), PushStore(leader_db)
    t0 = clock.now()
    standby.push("batch.rows", 42, {"job": "nightly"}, t0)
    standby_db.dispose()  # the replica that took the push is gone
    reading = PushSource(leader, "batch.rows", timedelta(minutes=1)).read(t0)
    assert [(dict(p.labels), p.value) for p in reading.points] == [({"job": "nightly"}, 42.0)]
    leader_db.dispose()


def test_sum_over_the_window(clock, sentinel_db):
    buffer = PushStore(sentinel_db)
    source = PushSource(buffer, "payments.refunds", timedelta(minutes=5), aggregate="sum")
    t0 = clock.now()
    for i, volume in enumerate((10, None, 30)):
        buffer.push("payments.refunds", 2, {"method": "card"}, t0 - timedelta(seconds=i), volume)
    buffer.push("payments.refunds", 1, {"method": "wallet"}, t0)
    reading = source.read(t0)
    assert [(dict(p.labels)["method"], p.value, p.volume) for p in reading.points] == [
        ("card", 6.0, 40.0),
        ("wallet", 1.0, None),
    ]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"signal": "bad name"}, "signal: 'bad name' is not a signal name"),
        ({"signal": ""}, "signal:"),
        ({"value": math.nan}, "value: must be a finite number"),
        ({"value": math.inf}, "value: must be a finite number"),
        ({"value": "12"}, "value: must be a number, got str"),
        ({"value": True}, "value: must be a number, got bool"),
        ({"volume": -1}, "volume: must be >= 0"),
        ({"volume": math.nan}, "volume: must be a finite number"),
        ({"labels": {"bad-name": "x"}}, "labels: 'bad-name' is not a label name"),
        ({"labels": {"__name__": "x"}}, "not starting with a digit or '__'"),
        ({"labels": {"city": 5}}, "labels.city: must be a string, got int"),
        ({"labels": {"city": "x" * 257}}, "labels.city: 257 characters; at most 256"),
        ({"labels": {f"l{i}": "x" for i in range(17)}}, "17 labels; at most 16"),
        ({"labels": {f"l{i}": "x" * 30 for i in range(9)}}, "as a series key; at most 255"),
        ({"labels": ["city"]}, "labels: must be an object"),
        ({"t": "2026-01-01"}, "t: must be a datetime"),
        ({"t": "naive"}, "t: must be timezone-aware"),
        ({"t": "future"}, "in the future"),
    ],
)
def test_pushed_values_are_validated(clock, sentinel_db, kwargs, message):
    buffer = PushStore(sentinel_db, clock=clock)
    args = {"signal": "s", "value": 1.0, "labels": None, "t": None, "volume": None, **kwargs}
    if args["t"] == "naive":
        args["t"] = clock.now().replace(tzinfo=None)
    elif args["t"] == "future":
        args["t"] = clock.now() + timedelta(hours=1)
    with pytest.raises(PushValidationError) as caught:
        buffer.push(**args)
    assert message in str(caught.value)
    assert isinstance(caught.value, ValueError)  # the API answers 422 on ValueError
    assert buffer.signals() == []


def test_the_store_is_bounded(clock, sentinel_db):
    buffer = PushStore(
        sentinel_db,
        max_signals=2,
        max_points_per_signal=3,
        max_series_per_signal=2,
        retention=timedelta(hours=1),
        clock=clock,
    )
    t0 = clock.now()
    for i in range(5):
        buffer.push("a", i, None, t0 + timedelta(seconds=i) - timedelta(minutes=1))
    everything = (t0 - timedelta(days=1), t0 + timedelta(days=1))
    assert [p.value for p in buffer.window("a", *everything)] == [2, 3, 4]  # the newest 3
    buffer.push("b", 1, {"k": "1"}, t0)
    buffer.push("b", 1, {"k": "2"}, t0)
    buffer.push("b", 2, {"k": "2"}, t0)  # a known label set is always taken
    with pytest.raises(PushBufferFull, match="already has 2 label sets"):
        buffer.push("b", 1, {"k": "3"}, t0)
    with pytest.raises(PushBufferFull, match="already holds 2 signals"):
        buffer.push("c", 1, None, t0)
    # Received more than the retention ago: deleted by the daily prune.
    clock.advance(hours=2)
    buffer.push("a", 9, None, clock.now())
    assert buffer.prune() == 8
    assert [p.value for p in buffer.window("a", *everything)] == [9]
    buffer.push("c", 1, None, clock.now())  # "b" is gone: room for another signal
    assert buffer.signals() == ["a", "c"]


def test_pushes_from_many_threads_are_all_kept(clock, sentinel_db):
    buffer = PushStore(sentinel_db)
    t0 = clock.now()

    def pusher(n: int) -> None:
        for i in range(50):
            buffer.push("s", 1.0, {"thread": str(n)}, t0 - timedelta(microseconds=i))

    threads = [threading.Thread(target=pusher, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    source = PushSource(buffer, "s", timedelta(minutes=1), aggregate="sum")
    assert [p.value for p in source.read(t0).points] == [50.0] * 6


def test_push_config(sentinel_db):
    buffer = PushStore(sentinel_db)
    named = parse_source_config({"type": "push", "signal": "custom.name", "aggregate": "sum"})
    source = build_source(named, SourceContext(push_buffer=buffer), signal="catalogue.name")
    assert isinstance(source, PushSource) and source.signal == "custom.name"
    with pytest.raises(SourceConfigError, match="push store"):
        build_source(named, SourceContext())
    with pytest.raises(SourceConfigError, match="needs a signal name"):
        build_source(parse_source_config({"type": "push"}), SourceContext(push_buffer=buffer))
    with pytest.raises(ValueError, match="'latest' or 'sum'"):
        parse_source_config({"type": "push", "aggregate": "avg"})
