"""The push buffer (validation, bounds, threads) and the push source."""

from __future__ import annotations

import math
import threading
from datetime import timedelta

import pytest

from sentinel.sources import (
    PushBuffer,
    PushSource,
    PushValidationError,
    SourceConfigError,
    SourceContext,
    build_source,
    parse_source_config,
)
from sentinel.sources.push import PushBufferFull


def test_latest_per_label_set_within_the_window(clock):
    buffer = PushBuffer()
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


def test_sum_over_the_window(clock):
    buffer = PushBuffer()
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
        ({"labels": ["city"]}, "labels: must be an object"),
        ({"t": "2026-01-01"}, "t: must be a datetime"),
        ({"t": "naive"}, "t: must be timezone-aware"),
        ({"t": "future"}, "in the future"),
    ],
)
def test_pushed_values_are_validated(clock, kwargs, message):
    buffer = PushBuffer(clock=clock)
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


def test_the_buffer_is_bounded(clock):
    buffer = PushBuffer(
        max_signals=2,
        max_points_per_signal=3,
        max_series_per_signal=2,
        retention=timedelta(hours=1),
    )
    t0 = clock.now()
    for i in range(5):
        buffer.push("a", i, None, t0 + timedelta(seconds=i))
    assert [
        p.value for p in buffer.window("a", t0 - timedelta(days=1), t0 + timedelta(days=1))
    ] == [
        2,
        3,
        4,
    ]
    buffer.push("b", 1, {"k": "1"}, t0)
    buffer.push("b", 1, {"k": "2"}, t0)
    with pytest.raises(PushBufferFull, match="already has 2 label sets"):
        buffer.push("b", 1, {"k": "3"}, t0)
    with pytest.raises(PushBufferFull, match="already holds 2 signals"):
        buffer.push("c", 1, None, t0)
    # Older than the retention before the newest value: dropped.
    buffer.push("a", 9, None, t0 + timedelta(hours=2))
    assert [p.value for p in buffer.window("a", t0, t0 + timedelta(days=1))] == [9]
    buffer.clear("b")
    buffer.push("c", 1, None, t0)
    assert buffer.signals() == ["a", "c"]


def test_pushes_from_many_threads_are_all_kept(clock):
    buffer = PushBuffer()
    t0 = clock.now()

    def pusher(n: int) -> None:
        for i in range(200):
            buffer.push("s", 1.0, {"thread": str(n)}, t0 - timedelta(microseconds=i))

    threads = [threading.Thread(target=pusher, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    source = PushSource(buffer, "s", timedelta(minutes=1), aggregate="sum")
    assert [p.value for p in source.read(t0).points] == [200.0] * 8


def test_push_config():
    buffer = PushBuffer()
    named = parse_source_config({"type": "push", "signal": "custom.name", "aggregate": "sum"})
    source = build_source(named, SourceContext(push_buffer=buffer), signal="catalogue.name")
    assert isinstance(source, PushSource) and source.signal == "custom.name"
    with pytest.raises(SourceConfigError, match="push buffer"):
        build_source(named, SourceContext())
    with pytest.raises(SourceConfigError, match="needs a signal name"):
        build_source(parse_source_config({"type": "push"}), SourceContext(push_buffer=buffer))
    with pytest.raises(ValueError, match="'latest' or 'sum'"):
        parse_source_config({"type": "push", "aggregate": "avg"})
