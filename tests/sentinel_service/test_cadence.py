"""Evaluation on a fixed cadence: a signal's due instants lie on a grid
(previous due + interval), and the loop sleeps until the next one, so a
1-second signal is read every second however late each wake-up is."""

from __future__ import annotations

import random
import threading
from datetime import datetime, timedelta

import pytest

from common.clock import FakeClock
from common.yaml_config import parse_yaml_model
from sentinel.cadence import run_on_cadence
from sentinel.catalogue import Catalogue
from sentinel.service import Sentinel, build_sentinel
from sentinel.settings import SentinelSettings
from sentinel.sources.base import Reading, Source

CATALOGUE = """
signals:
  - name: fast
    description: read every second
    kind: level
    interval_seconds: 1
    no_data: ok
    labels: {team: core, service: demo}
    source: {type: push, window_seconds: 60}
    detector: {kind: static, params: {threshold: 100, direction: above}}
  - name: slow
    description: read every 15 seconds
    kind: level
    interval_seconds: 15
    no_data: ok
    labels: {team: core, service: demo}
    source: {type: push, window_seconds: 60}
    detector: {kind: static, params: {threshold: 100, direction: above}}
"""


class CountingSource:
    """Records the instant of every read of the wrapped source."""

    def __init__(self, inner: Source) -> None:
        self.inner = inner
        self.reads: list[datetime] = []

    def read(self, now: datetime) -> Reading:
        self.reads.append(now)
        return self.inner.read(now)

    def close(self) -> None:
        self.inner.close()


@pytest.fixture
def sentinel(sentinel_url, database_url, clock):
    catalogue = parse_yaml_model(CATALOGUE, Catalogue)
    settings = SentinelSettings(
        database_url=sentinel_url, translator_database_url=database_url, replica="replica-a"
    )
    s = build_sentinel(settings, clock=clock, catalogue=catalogue, migrate=False)
    for name in ("fast", "slow"):
        s.sources[name] = CountingSource(s.sources[name])
    yield s
    s.close()


def _run(sentinel: Sentinel, clock: FakeClock, seconds: float, jitter) -> list[float]:  # type: ignore[no-untyped-def]
    """Run the real loop for ``seconds`` of fake time; every wake-up comes
    ``jitter()`` seconds off the instant asked for. Returns the delays asked for."""
    stop = threading.Event()
    end = clock.now() + timedelta(seconds=seconds)
    asked: list[float] = []

    def wait(delay: float) -> bool:
        asked.append(delay)
        clock.advance(seconds=max(0.0, delay + jitter()))
        return clock.now() >= end

    run_on_cadence(sentinel.run_cycle, clock, stop, wait)
    return asked


def _offsets(reads: list[datetime], start: datetime, interval: float) -> list[int]:
    return [int((t - start).total_seconds() // interval) for t in reads]


def test_a_one_second_signal_is_read_on_every_tick_despite_jittered_wake_ups(sentinel, clock):
    rng = random.Random(7)
    start = clock.now()
    # Late by up to 0.45 s, now and then a little early (a timer that fires early).
    _run(sentinel, clock, 600, lambda: rng.uniform(-0.05, 0.45))
    fast, slow = sentinel.sources["fast"].reads, sentinel.sources["slow"].reads
    assert _offsets(fast, start, 1) == list(range(len(fast)))  # no second skipped or doubled
    assert len(fast) >= 599
    assert all(0 <= (t - start).total_seconds() % 1 < 0.5 for t in fast)  # never early
    assert _offsets(slow, start, 15) == list(range(len(slow)))
    assert len(slow) >= 40
    assert sentinel.evaluator is not None and sentinel.evaluator.skipped_ticks == {}


def test_the_loop_sleeps_until_the_next_due_instant(sentinel, clock):
    asked = _run(sentinel, clock, 30, lambda: 0.3)
    # Woken 0.3 s late each time, it asks for 0.7 s: the grid, not "now + 1 s".
    assert asked[0] == pytest.approx(1.0)
    assert asked[5:] == pytest.approx([0.7] * len(asked[5:]))


def test_a_loop_that_fell_behind_skips_to_the_next_grid_point_and_says_so_once(
    sentinel, clock, caplog
):
    start = clock.now()
    sentinel.run_cycle()
    clock.advance(seconds=3.4)  # a stall: the ticks at 1, 2 and 3 s are gone
    next_wake = sentinel.run_cycle()
    assert next_wake == start + timedelta(seconds=4)  # back on the grid
    evaluator = sentinel.evaluator
    assert evaluator is not None and evaluator.skipped_ticks == {"fast": 2}
    clock.advance(seconds=2.5)  # still behind: counted, not logged again
    assert sentinel.run_cycle() == start + timedelta(seconds=6)
    assert evaluator.skipped_ticks == {"fast": 3}
    clock.set(start + timedelta(seconds=6.1))
    assert sentinel.run_cycle() == start + timedelta(seconds=7)  # on time again
    late = [r for r in caplog.records if "engine.fell_behind" in r.getMessage()]
    assert len(late) == 1
