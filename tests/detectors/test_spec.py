"""The contract others integrate against: types, spec validation, defaults."""

from __future__ import annotations

import copy
import dataclasses

import pytest
from pydantic import ValidationError

from sentinel.detectors import (
    KINDS,
    Detector,
    DetectorSpec,
    Observation,
    SignalKind,
    Verdict,
    build_detector,
    default_spec,
    spec_for,
)


def test_observation_and_verdict_are_frozen_slots() -> None:
    obs = Observation(1.0, 2.0)
    assert obs.volume is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        obs.value = 3.0  # type: ignore[misc]
    v = Verdict(1.0, 2.0, 0.5, True, False, False, 1.0, 0.0, 2.0, "why")
    assert not hasattr(v, "__dict__")


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_builds_a_detector_from_defaults_or_minimal_params(kind: str) -> None:
    fixed = {"static": {"threshold": 1.0}, "ratio": {"threshold": 0.1}, "share": {"threshold": 0.1}}
    params = fixed.get(kind, {})
    if kind == "time_to_breach":
        params = {"limit": 100.0}
    spec = DetectorSpec(kind=kind, params=params)
    det = build_detector(spec)
    assert isinstance(det, Detector)
    assert det.name == kind
    verdict = det.step(Observation(1_700_000_000.0, 1.0))
    assert 0.0 <= verdict.score <= 1.0 and isinstance(verdict.reason, str)
    described = det.describe()
    assert described["kind"] == kind and "persistence" in described
    copy.deepcopy(det)  # evaluators snapshot detector state


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "nope"}, "unknown detector kind 'nope'"),
        ({"kind": "static"}, "parameter 'threshold' is required"),
        ({"kind": "static", "params": {"threshold": 1, "tresh": 2}}, "unknown parameter 'tresh'"),
        (
            {"kind": "static", "params": {"threshold": 1, "direction": "up"}},
            "parameter 'direction'",
        ),
        ({"kind": "ratio", "params": {"threshold": 1.5}}, "parameter 'threshold'"),
        ({"kind": "auto", "params": {"k": -1}}, "parameter 'k'"),
        ({"kind": "count", "params": {"alpha": 0.7}}, "parameter 'alpha'"),
        ({"kind": "burn_rate", "params": {"windows": [[300, 3600, 14.4]]}}, "long > short"),
        ({"kind": "time_to_breach", "params": {}}, "parameter 'limit' is required"),
        ({"kind": "auto", "for_samples": 3, "of_samples": 2}, "of_samples (2) must be at least"),
        ({"kind": "auto", "keep_firing_for_seconds": -1}, "keep_firing_for_seconds"),
    ],
)
def test_bad_specs_say_what_is_wrong(kwargs: dict, message: str) -> None:
    with pytest.raises(ValidationError) as err:
        DetectorSpec(**kwargs)
    assert message in str(err.value)


def test_params_are_completed_with_defaults_and_round_trip() -> None:
    spec = DetectorSpec(kind="ratio", params={"threshold": 0.2}, for_samples=2)
    assert spec.params == {
        "threshold": 0.2,
        "direction": "above",
        "min_volume": 20.0,
        "window_seconds": 0.0,
        "volume_is_rate": False,
    }
    again = DetectorSpec.model_validate_json(spec.model_dump_json())
    assert again == spec
    assert spec.describe() == (
        "ratio(threshold=0.2, direction=above, min_volume=20, window_seconds=0, "
        "volume_is_rate=False) [2 of 2 steps]"
    )


@pytest.mark.parametrize(
    ("kind", "detector", "direction"),
    [
        (None, "auto", "both"),
        (SignalKind.LEVEL, "auto", "both"),
        (SignalKind.COUNT, "auto", "up"),
        (SignalKind.RATIO, "auto", "up"),
        (SignalKind.QUEUE, "auto", "up"),
        ("error_ratio", "burn_rate", None),
    ],
)
def test_default_spec_per_signal_kind(kind, detector: str, direction: str | None) -> None:
    spec = default_spec(kind)
    assert spec.kind == detector
    assert spec.params.get("direction") == direction
    if kind is SignalKind.RATIO:
        assert spec.params["min_volume"] == 20.0


def test_parse_and_spec_for() -> None:
    spec = DetectorSpec.parse("static:threshold=0.3,direction=below,for_samples=2")
    assert spec.params["threshold"] == 0.3 and spec.params["direction"] == "below"
    assert spec.for_samples == 2
    assert spec_for("count", None) == default_spec("count")
    # a named detector takes the signal kind's direction unless told otherwise
    assert spec_for("count", "seasonal").params["direction"] == "up"
    assert spec_for("count", "seasonal:direction=both").params["direction"] == "both"
    assert spec_for("ratio", "auto:k=4").params == {**default_spec("ratio").params, "k": 4}
    with pytest.raises(ValueError, match="not key=value"):
        DetectorSpec.parse("static:threshold")
