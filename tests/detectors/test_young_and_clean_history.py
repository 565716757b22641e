"""Signals whose history says little: a payment method that never failed in two weeks
(its failure share learned a band of width ~0), and an error ratio minutes old. The first
lone failure must not page, a broken method must, and the text must say what it rests on."""

from __future__ import annotations

from sentinel.detectors import Observation, build_detector, default_spec

T0 = 1_700_000_000.0
STEP = 60.0
VOLUME = 30.0  # attempts per window


def _detector_after_clean_history():
    det = build_detector(default_spec("ratio"))
    for i in range(14 * 1440):
        det.step(Observation(T0 + STEP * i, 0.0, VOLUME))
    return det, T0 + STEP * 14 * 1440


def test_one_failure_of_thirty_on_a_method_that_never_failed_does_not_page() -> None:
    det, t = _detector_after_clean_history()
    verdicts = [det.step(Observation(t + STEP * k, 1 / VOLUME, VOLUME)) for k in range(3)]
    assert not any(v.firing for v in verdicts)
    assert verdicts[-1].upper is not None and 0.05 < verdicts[-1].upper < 0.5, verdicts[-1].reason


def test_half_the_attempts_failing_on_a_method_that_never_failed_pages_at_once() -> None:
    det, t = _detector_after_clean_history()
    v = det.step(Observation(t, 0.5, VOLUME))
    assert v.firing, v.reason
    assert "above 0.1" in v.reason
    assert "the first firing in 2 weeks" in v.reason


def test_a_young_error_ratio_says_how_much_data_its_burn_rate_rests_on() -> None:
    det = build_detector(default_spec("error_ratio"))
    verdicts = [det.step(Observation(T0 + 15.0 * i, 0.4, 100.0)) for i in range(16)]
    assert verdicts[-1].firing
    reason = verdicts[-1].reason
    assert "over the 4 min of data so far (6.0 h window)" in reason, reason
