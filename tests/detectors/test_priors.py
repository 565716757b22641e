"""Priors: a fixed guard judges a series until its learned detector can, so a fresh
install or a new series is protected from its first sample, and says who judged."""

from __future__ import annotations

import numpy as np
import pytest

from sentinel.catalogue import load_catalogue
from sentinel.detectors import DetectorSpec, Observation, build_detector
from sentinel.detectors.spec import FIXED_KINDS
from sentinel.settings import DEFAULT_CATALOGUE
from tests.detectors.synth import T0, seasonal_counts, times
from tests.detectors.test_equivalence import assert_same

WALLET_PRIOR = DetectorSpec(kind="share", params={"threshold": 0.2, "min_volume": 5})
GUARDED = DetectorSpec(
    kind="auto", params={"direction": "up"}, keep_firing_for_seconds=900, prior=WALLET_PRIOR
)


def test_a_new_series_is_judged_by_its_prior_from_the_first_samples() -> None:
    """A payment method with no history: 1 failure of 10 is fine, 6 of 10 pages at once,
    and the reason says the prior judged while the band was warming up."""
    det = build_detector(GUARDED)
    calm = det.step(Observation(T0, 1.0, 10.0))
    assert not calm.anomalous and "judged by the prior since" in calm.reason
    assert "warming up" in calm.reason
    bad = det.step(Observation(T0 + 15, 6.0, 10.0))
    assert bad.firing and bad.upper == 2.0  # 20% of 10 attempts, in failures
    assert bad.reason.startswith("6 of 10 (0.6) above a share of 0.2")
    assert det.describe()["judged_by"] == "prior"
    assert det.describe()["judged_since"].startswith("2024-01-01T00:00")


def test_too_few_attempts_get_no_verdict_from_the_prior() -> None:
    det = build_detector(GUARDED)
    v = det.step(Observation(T0, 3.0, 4.0))  # 75% of 4 attempts: under the minimum volume
    assert not v.anomalous and not v.firing


def test_the_learned_band_takes_over_once_it_can_judge() -> None:
    t, v, _ = seasonal_counts(10, interval=600.0, peak=30.0, seed=3)
    vol = v * 10 + 20  # failures are a small share of attempts
    det = build_detector(GUARDED)
    verdicts = [det.step(Observation(*row)) for row in zip(t, v, vol, strict=True)]
    assert det.describe()["judged_by"] == "learned"
    assert "judged by the prior" not in verdicts[-1].reason
    assert verdicts[-1].expected is not None  # a band, not a fixed line
    assert "judged by the prior" in verdicts[0].reason


def test_batch_and_stepping_agree_with_a_prior() -> None:
    rng = np.random.default_rng(4)
    t = times(9, 600.0)
    vol = rng.poisson(30, len(t)).astype(float)
    v = rng.binomial(vol.astype(int), 0.03).astype(float)
    v[5:8] = vol[5:8] * 0.5  # a fault while the band still warms up: the prior's
    v[-30:-25] = vol[-30:-25] * 0.6  # and one once it judges: the band's
    stepped = assert_same(GUARDED, t, v, vol)
    assert stepped["firing"][5:8].all()
    ratio = DetectorSpec(
        kind="auto",
        prior=DetectorSpec(
            kind="ratio",
            params={
                "threshold": 0.05,
                "min_volume": 20,
                "window_seconds": 60,
                "volume_is_rate": True,
            },
        ),
    )
    ts = times(2, 1.0)[:4000]
    rate = rng.poisson(3, len(ts)).astype(float)
    share = np.where(rate > 0, rng.binomial(rate.astype(int), 0.01) / np.maximum(rate, 1), 0.0)
    share[3000:3100] = 0.4
    assert_same(ratio, ts, share, rate)


def test_a_rate_volume_counts_requests_whatever_the_interval() -> None:
    """1 request a second for a minute is 60 requests, sampled every second or every 15."""
    spec = DetectorSpec(
        kind="ratio",
        params={"threshold": 0.05, "min_volume": 50, "window_seconds": 60, "volume_is_rate": True},
    )
    for interval in (1.0, 15.0):
        det = build_detector(spec)
        steps = [
            det.step(Observation(T0 + i * interval, 0.5, 1.0)) for i in range(int(120 / interval))
        ]
        assert steps[-1].anomalous, interval
        assert "volume" in steps[1].reason and "no verdict" in steps[1].reason


@pytest.mark.parametrize(
    ("prior", "message"),
    [
        ({"kind": "auto"}, "prior: a fixed detector"),
        ({"kind": "static", "params": {"threshold": 1}, "for_samples": 3}, "persistence"),
    ],
)
def test_a_prior_must_be_a_fixed_detector(prior: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DetectorSpec(kind="auto", prior=prior)


def test_every_default_signal_is_judged_from_its_first_sample() -> None:
    """No signal of the default catalogue waits for history before it can page."""
    for signal in load_catalogue(DEFAULT_CATALOGUE).signals:
        spec = signal.effective_detector
        assert spec.kind in FIXED_KINDS or spec.prior is not None, signal.name
