"""Property tests: who_is_on_call agrees with shifts, shifts never overlap and
shifts plus gaps tile the window exactly, in zones with and without DST."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sentinel.alerting.schedules import Schedule, gaps, shifts, who_is_on_call

ZONES = [
    "America/New_York",
    "Europe/Berlin",
    "Europe/Moscow",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
    "UTC",
]
DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
PEOPLE = ["ann", "bob", "cem", "dee"]

local_times = st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2026, 12, 31))
hhmm = st.builds(lambda h, m: f"{h:02d}:{m:02d}", st.integers(0, 23), st.sampled_from([0, 15, 30]))


@st.composite
def restrictions(draw: Any) -> dict[str, Any]:
    start = draw(hhmm)
    end = draw(hhmm.filter(lambda e: e != start))
    out: dict[str, Any] = {"start": start, "end": end}
    kind = draw(st.sampled_from(["daily", "days", "span"]))
    if kind == "days":
        out["days"] = draw(st.lists(st.sampled_from(DAYS), min_size=1, max_size=7, unique=True))
    elif kind == "span":
        out["days"] = [draw(st.sampled_from(DAYS))]
        out["end_day"] = draw(st.sampled_from(DAYS))
    return out


@st.composite
def layers(draw: Any, index: int) -> dict[str, Any]:
    rotation: dict[str, Any] = {
        "participants": draw(st.lists(st.sampled_from(PEOPLE), min_size=1, max_size=3)),
        "start": draw(local_times).isoformat(),
        "handoff": draw(st.sampled_from(["daily", "weekly", "custom"])),
    }
    if rotation["handoff"] == "custom":
        if draw(st.booleans()):
            rotation["every_hours"] = draw(st.integers(1, 72))
        else:
            rotation["every_days"] = draw(st.integers(1, 4))
    layer: dict[str, Any] = {"name": f"layer{index}", "rotation": rotation}
    if draw(st.booleans()):
        layer["time_zone"] = draw(st.sampled_from(ZONES))
    layer["restrictions"] = draw(st.lists(restrictions(), max_size=2))
    return layer


@st.composite
def schedules(draw: Any) -> Schedule:
    count = draw(st.integers(1, 3))
    overrides = []
    for _ in range(draw(st.integers(0, 2))):
        start = draw(local_times)
        overrides.append(
            {
                "person": draw(st.sampled_from(PEOPLE)),
                "start": start.isoformat(),
                "end": (start + timedelta(minutes=draw(st.integers(1, 3000)))).isoformat(),
            }
        )
    return Schedule.model_validate(
        {
            "name": "prop",
            "time_zone": draw(st.sampled_from(ZONES)),
            "layers": [draw(layers(i)) for i in range(count)],
            "overrides": overrides,
        }
    )


instants = st.datetimes(
    min_value=datetime(2024, 1, 1), max_value=datetime(2026, 12, 31), timezones=st.just(UTC)
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    schedule=schedules(),
    start=instants,
    length=st.integers(60, 10 * 24 * 3600),
    probes=st.lists(st.floats(0, 1, exclude_max=True), min_size=1, max_size=4),
)
def test_timeline_is_consistent(
    schedule: Schedule, start: datetime, length: int, probes: list[float]
) -> None:
    end = start + timedelta(seconds=length)
    timeline = shifts(schedule, start, end)
    holes = gaps(schedule, start, end)

    for shift in timeline:
        assert start <= shift.start < shift.end <= end
        assert shift.start.tzinfo is UTC and shift.end.tzinfo is UTC
    for prev, cur in zip(timeline, timeline[1:], strict=False):
        assert prev.end <= cur.start  # never overlap
        if prev.end == cur.start:  # adjacent pieces of one stint are merged
            assert (prev.person, prev.layer, prev.override) != (cur.person, cur.layer, cur.override)

    pieces = sorted([(s.start, s.end) for s in timeline] + holes)
    assert pieces[0][0] == start and pieces[-1][1] == end
    for (_, hi), (lo, _) in zip(pieces, pieces[1:], strict=False):
        assert hi == lo  # exact tiling, no overlap and no hole

    for fraction in probes:
        at = start + timedelta(seconds=int(length * fraction))
        cover = next((s for s in timeline if s.start <= at < s.end), None)
        got = who_is_on_call(schedule, at)
        if cover is None:
            assert got is None
            assert any(lo <= at < hi for lo, hi in holes)
            continue
        assert got is not None
        assert (got.person, got.layer, got.override) == (cover.person, cover.layer, cover.override)
        assert got.start <= cover.start and cover.end <= got.end
        if cover.start > start:
            assert got.start == cover.start
        if cover.end < end:
            assert got.end == cover.end
