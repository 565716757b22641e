"""Choosing thresholds from history: rewind a month, pick what would have caught the known
incidents within the alert budget, and say what it cost."""

from __future__ import annotations

import io

import numpy as np
import pytest

from sentinel.detectors import (
    DetectorSpec,
    default_spec,
    evaluate,
    plot_tuning,
    tune,
)
from tests.detectors.synth import DAY, WEEK, observations, seasonal_counts, times


def month_with_incidents():
    """30 days of 5-minute seasonal counts and three incidents in the last two weeks."""
    t, v, _ = seasonal_counts(30, 300.0, peak=60.0, seed=31)
    v = v.copy()
    incidents = []
    for day, hours, factor in ((17.5, 2.0, 0.0), (23.3, 1.0, 3.0), (27.6, 4.0, 0.5)):
        a = np.searchsorted(t, t[0] + day * DAY)
        b = np.searchsorted(t, t[0] + day * DAY + hours * 3600)
        v[a:b] = np.round(v[a:b] * factor)
        incidents.append((float(t[a]), float(t[b - 1])))
    return t, v, incidents


def test_tuned_threshold_catches_the_incidents_within_the_budget() -> None:
    t, v, incidents = month_with_incidents()
    result = tune((t, v), "count", incidents, budget_per_week=1.0, detector="auto:direction=both")
    b = result.backtest
    assert b.incidents_caught == 3 and b.incidents_missed == 0
    assert b.within_budget and b.false_alerts_per_week <= 1.0
    assert all(o.caught and o.delay_seconds is not None for o in result.incidents)
    assert max(o.delay_seconds for o in result.incidents) <= 3600
    # provenance: what it was tuned on, for the alert text
    p = result.provenance
    assert (p.data_start, p.data_end, p.samples) == (float(t[0]), float(t[-1]), len(t))
    assert p.budget_per_week == 1.0 and len(p.incidents) == 3 and p.sensitivity == "k"
    assert p.judged_from is not None and p.weeks_judged > 3
    assert result.spec.kind == "auto" and result.spec.provenance is not None
    assert result.spec.provenance["incidents_caught"] == "3/3"
    # the would-be alerts are contiguous firing episodes of exactly that spec
    batch = evaluate(result.spec, t, v)
    starts = np.flatnonzero(np.diff(batch.firing.astype(int), prepend=0) == 1)
    assert [a.start for a in result.alerts] == [float(x) for x in t[starts]]
    assert sum(not a.inside_incident for a in result.alerts) == b.alerts_outside_incidents
    assert all(a.start <= a.end for a in result.alerts)


def test_tight_budget_reports_what_it_gave_up() -> None:
    # a noisy gauge with bursts as tall as the (shallow) incident: no threshold both
    # catches the incident and stays silent outside it
    rng = np.random.default_rng(32)
    t = times(28, 300.0)
    v = 100 + rng.normal(0, 2, len(t))
    for b in rng.choice(len(t) // 2, 8, replace=False):
        v[b : b + 4] += 12  # bursts too long for any persistence the tuner may choose
    a = np.searchsorted(t, t[0] + 20 * DAY)
    v[a : a + 12] += 10
    incidents = [(float(t[a]), float(t[a + 11]))]
    result = tune((t, v), "level", incidents, 0.0, detector="static")
    assert result.backtest.within_budget and result.backtest.false_alerts_per_week == 0
    assert result.backtest.incidents_missed == 1
    assert any(
        "misses 1 of 1 incidents" in n and "catching all would cost" in n for n in result.notes
    )
    # with a looser budget it catches it, and says what it costs
    loose = tune((t, v), "level", incidents, 5.0, detector="static")
    assert loose.backtest.incidents_caught == 1
    assert 0 < loose.backtest.false_alerts_per_week <= 5.0
    assert loose.spec.params["threshold"] < result.spec.params["threshold"]


def test_budget_that_cannot_be_met_is_said() -> None:
    rng = np.random.default_rng(33)
    t = times(14, 60.0)
    v = rng.normal(0, 1, len(t))
    v[::500] = 50.0  # regular bursts no threshold below 50 ignores
    result = tune((t, v), None, [], 0.5, detector="static:threshold=60,for_samples=1")
    assert result.backtest.within_budget  # the top candidate is above every burst
    result = tune((t, v), None, [], 0.0, detector="absence:after_seconds=60")
    assert result.backtest.alerts_total == 0


def test_without_incidents_the_default_stays_unless_it_breaks_the_budget() -> None:
    t, v, _ = seasonal_counts(21, 300.0, peak=60.0, seed=34)
    default_k = default_spec("count").params["k"]
    quiet = tune(observations(t, v), "count", [], budget_per_week=1.0)
    assert quiet.spec.params["k"] == default_k and quiet.spec.for_samples == 1
    noisy = v.copy()
    noisy[np.random.default_rng(35).choice(len(v), 12, replace=False)] *= 2.5
    strict = tune((t, noisy), "count", [], budget_per_week=0.0)
    assert strict.backtest.alerts_total == 0
    assert strict.spec.params["k"] > default_k or strict.spec.for_samples > 1


def test_plot_writes_a_png() -> None:
    t, v, incidents = month_with_incidents()
    result = tune((t, v), "count", incidents, 1.0, detector="auto:direction=both")
    buf = io.BytesIO()
    plot_tuning(t, v, evaluate(result.spec, t, v), result, buf)
    assert buf.getvalue()[:8] == b"\x89PNG\r\n\x1a\n" and len(buf.getvalue()) > 10_000


@pytest.mark.parametrize("bad", [-1.0])
def test_bad_budget(bad: float) -> None:
    with pytest.raises(ValueError, match="budget_per_week"):
        tune((np.arange(10.0), np.ones(10)), None, [], bad)


def test_a_spec_keeps_its_other_parameters() -> None:
    t, v, incidents = month_with_incidents()
    start = DetectorSpec(kind="seasonal", params={"direction": "down", "weeks": 2})
    result = tune((t, v), "count", incidents[:1], 1.0, detector=start)
    assert result.spec.kind == "seasonal"
    assert result.spec.params["direction"] == "down" and result.spec.params["weeks"] == 2


def test_week_counting_uses_the_judged_span() -> None:
    t, v, incidents = month_with_incidents()
    result = tune((t, v), "count", incidents, 1.0)
    judged = result.provenance.data_end - (result.provenance.judged_from or 0)
    assert result.provenance.weeks_judged == pytest.approx(judged / WEEK)
    assert isinstance(DetectorSpec.model_validate(result.spec.model_dump()), DetectorSpec)
