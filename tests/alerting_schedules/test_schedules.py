"""On-call schedules: who is on call, DST-stable handoffs, restrictions,
precedence, overrides, gaps and configuration errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from common.yaml_config import ConfigError
from sentinel.alerting.schedules import (
    Schedule,
    gaps,
    load_schedule,
    local_to_utc,
    parse_schedule,
    shifts,
    who_is_on_call,
)

EXAMPLE = Path(__file__).parents[2] / "sentinel" / "alerting" / "examples" / "schedules.yaml"
MSK = ZoneInfo("Europe/Moscow")
H = timedelta(hours=1)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def local(zone: str, *args: int) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo(zone))


def one_layer(zone: str, start: str, handoff: str, people: int = 2, **extra: object) -> Schedule:
    rotation = {
        "participants": [f"p{i}" for i in range(people)],
        "start": start,
        "handoff": handoff,
    }
    rotation.update(extra)
    return Schedule.model_validate(
        {"name": "s", "time_zone": zone, "layers": [{"name": "l", "rotation": rotation}]}
    )


# ------------------------------------------------------------------ the example


def test_example_business_hours_and_nights() -> None:
    s = load_schedule(EXAMPLE)
    # Wed 2025-01-08 12:00 Moscow: week 1 of the primary rotation.
    now = who_is_on_call(s, local("Europe/Moscow", 2025, 1, 8, 12))
    assert now is not None
    assert (now.person, now.layer, now.override, now.response_minutes) == (
        "sysadmin-1",
        "business-hours",
        False,
        15,
    )
    assert now.start == local("Europe/Moscow", 2025, 1, 8, 9)
    assert now.end == local("Europe/Moscow", 2025, 1, 8, 18)
    assert now.start.tzinfo is UTC
    # Second week, next primary.
    assert who_is_on_call(s, local("Europe/Moscow", 2025, 1, 14, 10)).person == "sysadmin-2"
    # Wed 23:00 Moscow: night layer, daily rotation started Mon 18:00 with senior-ops-1.
    night = who_is_on_call(s, local("Europe/Moscow", 2025, 1, 8, 23))
    assert (night.person, night.layer, night.response_minutes) == (
        "senior-ops-1",
        "nights-and-weekends",
        30,
    )
    assert night.start == local("Europe/Moscow", 2025, 1, 8, 18)
    assert night.end == local("Europe/Moscow", 2025, 1, 9, 9)
    # Friday night override beats the night layer.
    over = who_is_on_call(s, local("Europe/Moscow", 2025, 1, 10, 20))
    assert (over.person, over.layer, over.override) == ("ops-manager", "override", True)
    assert over.response_minutes is None
    # Saturday midday: weekend nights layer with no business hours.
    assert who_is_on_call(s, local("Europe/Moscow", 2025, 1, 11, 12)).layer == (
        "nights-and-weekends"
    )


def test_example_has_no_gaps_once_started() -> None:
    s = load_schedule(EXAMPLE)
    start = local("Europe/Moscow", 2025, 1, 6, 9)
    assert gaps(s, start, start + timedelta(days=60)) == []
    # Before both rotations begin nobody is on call, and that is reported.
    assert gaps(s, start - timedelta(hours=5), start) == [(start - timedelta(hours=5), start)]
    assert who_is_on_call(s, start - H) is None


# ----------------------------------------------------------- DST-stable handoffs


def handoffs(s: Schedule, a: datetime, b: datetime) -> list[tuple[datetime, datetime]]:
    return [(x.start, x.end) for x in shifts(s, a, b)]


@pytest.mark.parametrize(
    ("zone", "spring", "autumn"),
    [
        ("America/New_York", (2025, 3, 8), (2025, 11, 1)),
        ("Europe/Berlin", (2025, 3, 29), (2025, 10, 25)),
    ],
)
def test_daily_handoff_keeps_local_time_across_dst(
    zone: str, spring: tuple[int, int, int], autumn: tuple[int, int, int]
) -> None:
    tz = ZoneInfo(zone)
    s = one_layer(zone, "2025-01-01T09:00", "daily")
    for day, changed in ((spring, 23), (autumn, 25)):
        a = local(zone, *day, 9) - timedelta(days=2)
        b = local(zone, *day, 9) + timedelta(days=3)
        got = handoffs(s, a, b)
        inner = got[1:-1]  # first/last are clipped by the window
        for lo, hi in inner:
            assert lo.astimezone(tz).time().hour == 9 and lo.astimezone(tz).minute == 0
            assert hi.astimezone(tz).hour == 9
        lengths = {lo.astimezone(tz).date(): (hi - lo) / H for lo, hi in inner}
        change_day = datetime(*day).date()
        assert lengths[change_day] == changed
        assert all(v == 24 for d, v in lengths.items() if d != change_day)


@pytest.mark.parametrize(
    ("zone", "spring_week", "autumn_week"),
    [
        ("America/New_York", (2025, 3, 3), (2025, 10, 27)),
        ("Europe/Berlin", (2025, 3, 24), (2025, 10, 20)),
    ],
)
def test_weekly_handoff_is_167_or_169_hours_at_the_change(
    zone: str, spring_week: tuple[int, int, int], autumn_week: tuple[int, int, int]
) -> None:
    tz = ZoneInfo(zone)
    s = one_layer(zone, "2025-01-06T10:00", "weekly", people=3)  # Mondays 10:00
    for week, changed in ((spring_week, 167), (autumn_week, 169)):
        start = local(zone, *week, 10)
        [before, at, after] = handoffs(s, start - timedelta(days=7), start + timedelta(days=14))
        assert (at[1] - at[0]) / H == changed
        assert (before[1] - before[0]) / H == 168 and (after[1] - after[0]) / H == 168
        for lo, _ in (before, at, after):
            assert lo.astimezone(tz).strftime("%a %H:%M") == "Mon 10:00"


def test_moscow_has_no_dst_so_shifts_are_always_24_and_168_hours() -> None:
    daily = one_layer("Europe/Moscow", "2025-01-01T09:00", "daily")
    weekly = one_layer("Europe/Moscow", "2025-01-06T09:00", "weekly")
    for s, length in ((daily, 24), (weekly, 168)):
        for month in (3, 10, 11):
            a = local("Europe/Moscow", 2025, month, 1, 9)
            inner = handoffs(s, a, a + timedelta(days=30))[1:-1]
            assert inner and all((hi - lo) / H == length for lo, hi in inner)
            assert all(lo.astimezone(MSK).hour == 9 for lo, _ in inner)


def test_custom_handoffs_hours_are_elapsed_days_are_local() -> None:
    hours = one_layer("Europe/Berlin", "2025-03-29T20:00", "custom", every_hours=12)
    got = handoffs(hours, local("Europe/Berlin", 2025, 3, 29, 20), utc(2025, 3, 31, 12))
    assert all((hi - lo) == 12 * H for lo, hi in got[:-1])
    days = one_layer("Europe/Berlin", "2025-03-28T09:00", "custom", every_days=2)
    [first, *_] = handoffs(days, local("Europe/Berlin", 2025, 3, 28, 9), utc(2025, 4, 5))
    assert (first[1] - first[0]) / H == 47


def test_gap_and_fold_rules() -> None:
    ny = ZoneInfo("America/New_York")
    # 02:30 does not exist on 2025-03-09: first valid instant is 03:00 EDT.
    assert local_to_utc(datetime(2025, 3, 9, 2, 30), ny) == utc(2025, 3, 9, 7)
    # 01:30 happens twice on 2025-11-02: the first (EDT) one is used.
    assert local_to_utc(datetime(2025, 11, 2, 1, 30), ny) == utc(2025, 11, 2, 5, 30)
    s = one_layer("America/New_York", "2025-03-01T02:30", "daily")
    [*_, spring] = handoffs(s, utc(2025, 3, 8), utc(2025, 3, 9, 7, 0, 1))
    assert spring[0] == utc(2025, 3, 9, 7)
    # A 01:30 handoff on the fall-back day happens at the first 01:30 (EDT).
    s = one_layer("America/New_York", "2025-03-01T01:30", "daily")
    autumn = who_is_on_call(s, utc(2025, 11, 2, 6))
    assert autumn.start == utc(2025, 11, 2, 5, 30)
    assert (autumn.end - autumn.start) / H == 25
    lord_howe = ZoneInfo("Australia/Lord_Howe")  # a 30-minute DST shift
    assert local_to_utc(datetime(2025, 10, 5, 2, 15), lord_howe) == datetime(
        2025, 10, 5, 2, 30, tzinfo=lord_howe
    )


# ------------------------------------------------------- restrictions, layers


NIGHTS = """
name: nights
time_zone: Europe/Berlin
layers:
  - name: night
    rotation: {participants: [ann, bob], start: "2025-03-01T18:00", handoff: daily}
    restrictions:
      - {start: "18:00", end: "09:00"}
"""


def test_restriction_crossing_midnight() -> None:
    s = parse_schedule(NIGHTS)
    assert who_is_on_call(s, local("Europe/Berlin", 2025, 3, 10, 23)).person == "bob"
    early = who_is_on_call(s, local("Europe/Berlin", 2025, 3, 11, 8, 59))
    assert early.person == "bob"
    assert early.start == local("Europe/Berlin", 2025, 3, 10, 18)
    assert early.end == local("Europe/Berlin", 2025, 3, 11, 9)
    assert who_is_on_call(s, local("Europe/Berlin", 2025, 3, 11, 12)) is None
    day = gaps(s, local("Europe/Berlin", 2025, 3, 11), local("Europe/Berlin", 2025, 3, 12))
    assert day == [
        (local("Europe/Berlin", 2025, 3, 11, 9), local("Europe/Berlin", 2025, 3, 11, 18))
    ]
    # The night the clocks go forward is an hour shorter.
    dst_night = who_is_on_call(s, local("Europe/Berlin", 2025, 3, 30, 5))
    assert (dst_night.end - dst_night.start) / H == 14


def test_weekly_window_with_end_day() -> None:
    s = parse_schedule(
        NIGHTS.replace(
            '{start: "18:00", end: "09:00"}',
            '{days: [fri], start: "18:00", end_day: mon, end: "09:00"}',
        )
    )
    assert who_is_on_call(s, local("Europe/Berlin", 2025, 3, 15, 12)) is not None  # Saturday
    assert who_is_on_call(s, local("Europe/Berlin", 2025, 3, 17, 8)) is not None  # Mon 08:00
    assert who_is_on_call(s, local("Europe/Berlin", 2025, 3, 18, 23)) is None  # Tuesday night


PRECEDENCE = """
name: team
time_zone: UTC
layers:
  - name: base
    rotation: {participants: [base], start: "2025-01-01T00:00", handoff: weekly}
  - name: day
    rotation: {participants: [day1, day2], start: "2025-01-01T00:00", handoff: daily}
    restrictions:
      - {days: [mon-fri], start: "09:00", end: "17:00"}
overrides:
  - {person: olga, start: "2025-01-08T12:00", end: "2025-01-08T14:00+00:00"}
  - {person: pete, start: "2025-01-08T13:00Z", end: "2025-01-08T13:30Z"}
"""


def test_layer_precedence_and_overrides() -> None:
    s = parse_schedule(PRECEDENCE)
    got = [
        (x.person, x.layer, x.start.hour, x.end.hour, x.end.minute)
        for x in shifts(s, utc(2025, 1, 8), utc(2025, 1, 9))
    ]
    assert got == [
        ("base", "base", 0, 9, 0),
        ("day2", "day", 9, 12, 0),
        ("olga", "override", 12, 13, 0),
        ("pete", "override", 13, 13, 30),
        ("olga", "override", 13, 14, 0),
        ("day2", "day", 14, 17, 0),
        ("base", "base", 17, 0, 0),
    ]
    # Saturday: the restricted layer is off, the base layer shows through.
    assert who_is_on_call(s, utc(2025, 1, 11, 12)).person == "base"


def test_merged_adjacent_same_person_shifts() -> None:
    s = one_layer("UTC", "2025-01-01T00:00", "daily", people=1)
    [only] = shifts(s, utc(2025, 1, 2), utc(2025, 1, 9))
    assert (only.start, only.end) == (utc(2025, 1, 2), utc(2025, 1, 9))


def test_naive_instants_are_refused() -> None:
    s = one_layer("UTC", "2025-01-01T00:00", "daily")
    with pytest.raises(ValueError, match="aware"):
        who_is_on_call(s, datetime(2025, 1, 2))


# ---------------------------------------------------------------- validation


def error_of(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_schedule(text, source="sched.yaml")
    return str(info.value)


def test_unknown_zone_names_line() -> None:
    msg = error_of("name: x\ntime_zone: Mars/Olympus\nlayers: []\n")
    assert "sched.yaml:2: time_zone:" in msg and "unknown time zone 'Mars/Olympus'" in msg


def test_layer_zone_checked_too() -> None:
    msg = error_of(PRECEDENCE.replace("  - name: day\n", "  - name: day\n    time_zone: Nowhere\n"))
    assert "sched.yaml:8: layers.1.time_zone:" in msg


def test_empty_participants() -> None:
    msg = error_of(PRECEDENCE.replace("[participants: [base]", "").replace("[base]", "[]"))
    assert "sched.yaml:6: layers.0.rotation.participants:" in msg and "must not be empty" in msg


def test_zero_length_restriction() -> None:
    msg = error_of(PRECEDENCE.replace('end: "17:00"', 'end: "09:00"'))
    assert "sched.yaml:10: layers.1.restrictions.0:" in msg and "zero length" in msg


def test_override_end_before_start() -> None:
    msg = error_of(PRECEDENCE.replace('end: "2025-01-08T14:00+00:00"', 'end: "2025-01-08T11:00Z"'))
    assert "overrides" in msg and "not after start" in msg
    msg = error_of(PRECEDENCE.replace('end: "2025-01-08T13:30Z"', 'end: "2025-01-08T12:30Z"'))
    assert "sched.yaml:13: overrides.1:" in msg and "not after start" in msg


def test_duplicate_layer_names() -> None:
    msg = error_of(PRECEDENCE.replace("name: day", "name: base"))
    assert "sched.yaml:5: layers:" in msg and "duplicate layer name 'base'" in msg


def test_unquoted_time_and_custom_handoff() -> None:
    msg = error_of(PRECEDENCE.replace('end: "17:00"', "end: 17:00"))
    assert "sched.yaml:10: layers.1.restrictions.0.end:" in msg and "quoted" in msg
    msg = error_of(PRECEDENCE.replace("handoff: weekly", "handoff: custom"))
    assert "sched.yaml:6: layers.0.rotation:" in msg and "every_hours" in msg
