"""History backfilled at a coarse step, then live samples at the signal's own interval:
the learned band judges the first live sample, and tuning judges the weeks it has.

The series is the sentinel's `payments.failed` for a rarely used method: failures in the
last 10 minutes, with the attempts as volume. One attempt every two hours or so: most
windows hold no attempt at all, and none of the history ever held more than one failure."""

from __future__ import annotations

import numpy as np

from sentinel.detectors import Observation, build_detector, default_spec, run, tune
from tests.detectors.synth import DAY, T0

WINDOW = 600.0  # the source's window: each sample counts the last 10 minutes
BACKFILL_STEP = 600.0
LIVE_STEP = 30.0
HISTORY_DAYS = 14


def payment_events(start: float, end: float, per_hour: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = rng.poisson(per_hour * (end - start) / 3600)
    return np.sort(rng.uniform(start, end, n))


def windowed(t: np.ndarray, events: np.ndarray) -> np.ndarray:
    """How many events fell in (t - WINDOW, t] for each t."""
    return (
        np.searchsorted(events, t, side="right") - np.searchsorted(events, t - WINDOW, side="right")
    ).astype(float)


def wallet_like(fault_at: float | None = None, live_hours: float = 3.0):
    """14 days at a 10-minute step, then live_hours at 30 s; from fault_at on, two failed
    attempts a minute (the method is broken and users retry)."""
    live_start = T0 + HISTORY_DAYS * DAY
    live_end = live_start + live_hours * 3600
    attempts = payment_events(T0 - WINDOW, live_end, per_hour=0.5, seed=3)
    # and a few successful ones in the first live hours
    attempts = np.sort(np.concatenate([attempts, live_start + np.array([20, 50, 95]) * 60.0]))
    # a failure now and then, never two in one window: the history's maximum is 1
    failures = np.arange(T0 + 3 * 3600, live_end, 7.3 * 3600)
    if fault_at is not None:
        broken = np.arange(fault_at, live_end, 30.0)
        attempts = np.sort(np.concatenate([attempts, broken]))
        failures = np.sort(np.concatenate([failures, broken]))
    t = np.concatenate(
        [np.arange(T0, live_start, BACKFILL_STEP), np.arange(live_start, live_end, LIVE_STEP)]
    )
    return t, windowed(t, failures), windowed(t, attempts), live_start


SPEC = default_spec("count")


def test_backfilled_history_judges_the_first_live_samples_and_catches_a_broken_method() -> None:
    fault_at = T0 + HISTORY_DAYS * DAY + 2 * 3600
    t, v, vol, live_start = wallet_like(fault_at)
    assert v[t < live_start].max() == 1.0
    verdicts = run(build_detector(SPEC), [Observation(*x) for x in zip(t, v, vol, strict=True)])
    live = [(ti, x) for ti, x in zip(t, verdicts, strict=True) if ti >= live_start]
    calm = [x for ti, x in live if ti < fault_at and x.value is not None]
    with_volume = [x for ti, x in live if ti < fault_at and x.reason.startswith("volume") is False]
    assert with_volume, "the live samples before the fault have attempts"
    assert all(x.expected is not None for x in with_volume), with_volume[0].reason
    assert not any(x.anomalous for x in calm)
    hot = [x for ti, x in live if fault_at <= ti < fault_at + 300 and x.anomalous]
    assert hot, "two failed attempts a minute page within 5 minutes"
    assert hot[0].value is not None and hot[0].value >= 5
    assert "above" in hot[0].reason


def test_tuning_on_backfilled_history_judges_the_weeks_it_has() -> None:
    t, v, vol, live_start = wallet_like()
    hist = t < live_start
    result = tune((t[hist], v[hist], vol[hist]), "count", [], budget_per_week=1.0)
    # a day of warm-up, then every day of the history judged
    assert result.provenance.weeks_judged > (HISTORY_DAYS - 2) / 7
    assert result.backtest.false_alerts_per_week <= 1.0
