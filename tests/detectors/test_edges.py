"""Inputs at the edges: empty, single, out of order, non-finite, duplicated times."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sentinel.detectors import (
    KINDS,
    DetectorSpec,
    Observation,
    OrderError,
    build_detector,
    evaluate,
    run,
)

PARAMS = {
    "static": {"threshold": 1.0},
    "ratio": {"threshold": 0.5},
    "share": {"threshold": 0.5},
    "time_to_breach": {"limit": 9},
}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_empty_and_single(kind: str) -> None:
    spec = DetectorSpec(kind=kind, params=PARAMS.get(kind, {}))
    empty = evaluate(spec, np.zeros(0), np.zeros(0))
    assert len(empty) == 0 and empty.firing.dtype == bool
    one = evaluate(spec, [1e9], [2.0])
    (v,) = run(build_detector(spec), [Observation(1e9, 2.0)])
    assert bool(one.anomalous[0]) == v.anomalous and bool(one.firing[0]) == v.firing


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_non_finite_values_are_no_data(kind: str) -> None:
    spec = DetectorSpec(kind=kind, params=PARAMS.get(kind, {}))
    t = 1e9 + np.arange(4) * 60.0
    result = evaluate(spec, t, [1.0, math.nan, math.inf, -math.inf])
    assert result.no_data.tolist() == [False, True, True, True]
    verdicts = run(
        build_detector(spec),
        [Observation(x, y) for x, y in zip(t, [1.0, None, math.inf, math.nan], strict=True)],
    )
    assert [v.no_data for v in verdicts] == [False, True, True, True]
    assert all(v.value is None for v in verdicts[1:])


def test_time_going_backwards_is_refused() -> None:
    det = build_detector(DetectorSpec(kind="auto"))
    det.step(Observation(100.0, 1.0))
    det.step(Observation(100.0, 1.0))  # the same time twice is fine
    with pytest.raises(OrderError, match="older than the previous one"):
        det.step(Observation(99.0, 1.0))
    with pytest.raises(OrderError, match="index 2"):
        evaluate(DetectorSpec(kind="auto"), [1.0, 2.0, 1.5], [1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="same length"):
        evaluate(DetectorSpec(kind="auto"), [1.0, 2.0], [1.0])


def test_lists_with_none_are_accepted_by_evaluate() -> None:
    result = evaluate(
        DetectorSpec(kind="static", params={"threshold": 1}),
        [1, 2, 3],
        [0, None, 5],
        [None, None, None],
    )
    assert result.no_data.tolist() == [False, True, False]
    assert result.anomalous.tolist() == [False, False, True]
