"""A month of history is read a day at a time, so a sentinel that is shutting down
waits for one day's read, not a month's; a signal stopped half-way stores nothing
and is filled whole at the next start."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from sentinel.backfill import StartupBackfill, backfill_series
from sentinel.sources.base import Reading, SeriesPoint, backfill_times

UNTIL = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
STEP = timedelta(minutes=10)


class CountingSource:
    """A range source answering 1.0 at every time asked; ``on_read`` runs after each read."""

    def __init__(self, on_read=lambda: None) -> None:  # type: ignore[no-untyped-def]
        self.times: list[datetime] = []
        self.on_read = on_read

    def read(self, now: datetime) -> Reading:
        return self.read_range(now, now, STEP)[0]

    def read_range(self, start: datetime, end: datetime, step: timedelta) -> list[Reading]:
        times = list(backfill_times(start, end, step))
        self.times.extend(times)
        self.on_read()
        return [Reading(t=t, points=(SeriesPoint(labels=(), value=1.0),)) for t in times]

    def close(self) -> None:
        pass


class History:
    def __init__(self) -> None:
        self.rows: list = []  # type: ignore[type-arg]

    def append(self, rows) -> None:  # type: ignore[no-untyped-def]
        self.rows.extend(rows)


def test_a_month_read_a_day_at_a_time_is_the_same_samples() -> None:
    source, history = CountingSource(), History()
    since = UNTIL - timedelta(days=30)
    stored = backfill_series("payments.failed", source, history, since, UNTIL, STEP)  # type: ignore[arg-type]
    expected = list(backfill_times(since, UNTIL, STEP))
    assert source.times == expected  # every time once, none twice, in order
    assert stored == len(history.rows) == len(expected)


def test_stopping_between_days_stores_nothing_and_is_prompt() -> None:
    stopping = threading.Event()
    source = CountingSource(on_read=stopping.set)  # the stop arrives during day one
    history = History()
    since = UNTIL - timedelta(days=30)
    assert backfill_series("payments.failed", source, history, since, UNTIL, STEP, stopping) == 0  # type: ignore[arg-type]
    assert history.rows == []  # no half-filled history that would never be completed
    assert len(source.times) == 144  # one day of ten-minute reads, not thirty


def test_closing_waits_for_the_read_in_progress_and_skips_the_rest() -> None:
    reading = threading.Event()
    fill: StartupBackfill | None = None

    def slow_read() -> None:  # the first day's read lasts until the stop is asked
        reading.set()
        assert fill is not None and fill.stopping.wait(10)

    source, history = CountingSource(on_read=slow_read), History()
    done: list[bool] = []
    spec = type("Spec", (), {"name": "payments.failed"})()
    other = type("Spec", (), {"name": "payments.failed_ratio"})()
    fill = StartupBackfill(
        [spec, other],  # type: ignore[list-item]
        {"payments.failed": source, "payments.failed_ratio": source},  # type: ignore[dict-item]
        history,  # type: ignore[arg-type]
        UNTIL,
        days=30,
        done=lambda: done.append(True),
        step=STEP,
    )
    fill.start()
    assert reading.wait(10)
    fill.stop(timeout=10)
    assert fill.finished.is_set()  # the thread ended before stop returned
    assert history.rows == [] and done == []  # nothing stored, no rebuild on the way out
    assert len(source.times) == 144  # one day read, the second signal never started
