"""Silences and recurring maintenance windows, including both DST changes in two
zones (Europe/Berlin, America/New_York)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from common.yaml_config import ConfigError, parse_yaml_model
from sentinel.alerting.silences import MaintenanceWindow, Silence, silenced_by

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
PAYMENTS = {"signal": "payments.failed", "service": "payments", "severity": "P1"}
BILLING = {"signal": "payments.failed", "service": "billing", "severity": "P1"}
BERLIN, NEW_YORK = ZoneInfo("Europe/Berlin"), ZoneInfo("America/New_York")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def silence(**overrides: object) -> Silence:
    fields: dict[str, object] = {
        "matchers": ['service="payments"'],
        "starts_at": T0,
        "ends_at": T0 + timedelta(hours=1),
        "created_by": "alice",
        "comment": "migrating the payments database",
    } | overrides
    return Silence.model_validate(fields)


def window(**overrides: object) -> MaintenanceWindow:
    fields: dict[str, object] = {
        "name": "nightly",
        "matchers": ['service="payments"'],
        "time_zone": "Europe/Berlin",
        "start": "02:00",
        "end": "04:00",
    } | overrides
    return MaintenanceWindow.model_validate(fields)


# ------------------------------------------------------------------- silences


def test_silence_is_active_from_start_up_to_end() -> None:
    s = silence()
    assert s.state_at(T0 - timedelta(seconds=1)) == "pending"
    assert s.active_at(T0) and s.active_at(T0 + timedelta(minutes=59, seconds=59))
    assert s.state_at(T0 + timedelta(hours=1)) == "expired"
    assert s.matches(PAYMENTS) and not s.matches(BILLING)
    # Times in any zone are kept as UTC.
    moscow = silence(starts_at=datetime(2026, 1, 5, 15, 0, tzinfo=ZoneInfo("Europe/Moscow")))
    assert moscow.starts_at == T0 and moscow.starts_at.tzinfo is UTC


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"ends_at": T0}, "is not after starts_at"),
        ({"ends_at": T0 - timedelta(hours=1)}, "is not after starts_at"),
        ({"comment": ""}, "at least 1 character"),
        ({"comment": "   "}, "must not be blank"),
        ({"created_by": ""}, "at least 1 character"),
        ({"matchers": []}, "at least one matcher"),
        ({"matchers": ['team=~".*"', 'env=""']}, "would mute every alert"),
        ({"matchers": ['severity=~"(P0"']}, "invalid regular expression"),
        ({"starts_at": datetime(2026, 1, 5, 12)}, "aware datetime"),
    ],
)
def test_bad_silences_are_refused(overrides: dict[str, object], fragment: str) -> None:
    with pytest.raises(ValidationError, match=fragment.replace("(", r"\(")):
        silence(**overrides)


def test_comment_is_required() -> None:
    with pytest.raises(ValidationError) as caught:
        Silence.model_validate(
            {"matchers": ["service=payments"], "starts_at": T0, "ends_at": T0 + timedelta(1),
             "created_by": "alice"}
        )  # fmt: skip
    assert [e["loc"] for e in caught.value.errors()] == [("comment",)]


def test_silenced_by_prefers_the_longest_active_silence() -> None:
    short = silence(id="short")
    long = silence(id="long", ends_at=T0 + timedelta(hours=3))
    expired = silence(id="old", starts_at=T0 - timedelta(hours=2), ends_at=T0)
    other = silence(id="billing", matchers=['service="billing"'])
    at = T0 + timedelta(minutes=5)
    assert silenced_by(PAYMENTS, at, [short, long, expired, other], []) is long
    assert silenced_by(BILLING, at, [short, long, other], []) is other
    assert silenced_by(PAYMENTS, T0 + timedelta(hours=4), [short, long], []) is None
    assert silenced_by(PAYMENTS, at, [], []) is None


def test_silenced_by_falls_back_to_a_window_in_progress() -> None:
    nightly = window()  # 02:00-04:00 Berlin = 01:00-03:00 UTC in winter
    all_night = window(name="all-night", start="00:00", end="06:00")
    inside = utc(2026, 1, 6, 1, 30)
    assert silenced_by(PAYMENTS, inside, [], [nightly, all_night]) is all_night
    assert silenced_by(PAYMENTS, utc(2026, 1, 6, 4, 0), [], [nightly, all_night]) is all_night
    assert silenced_by(PAYMENTS, utc(2026, 1, 6, 6, 0), [], [nightly, all_night]) is None
    assert silenced_by(BILLING, inside, [], [nightly]) is None
    # A human's silence wins over a window: it says who and why.
    manual = silence(starts_at=inside - timedelta(minutes=1), ends_at=inside + timedelta(minutes=1))
    assert silenced_by(PAYMENTS, inside, [manual], [all_night]) is manual


# --------------------------------------------------------- maintenance windows


def test_window_in_winter_and_summer() -> None:
    w = window()
    assert w.window_on(date(2026, 1, 6)) == (utc(2026, 1, 6, 1), utc(2026, 1, 6, 3))
    assert w.window_on(date(2026, 7, 6)) == (utc(2026, 7, 6, 0), utc(2026, 7, 6, 2))
    assert not w.active_at(utc(2026, 1, 6, 0, 59, 59))
    assert w.active_at(utc(2026, 1, 6, 1)) and w.active_at(utc(2026, 1, 6, 2, 59, 59))
    assert not w.active_at(utc(2026, 1, 6, 3))


def test_berlin_spring_forward_and_fall_back() -> None:
    w = window()  # 02:00-04:00 daily
    # 29 March 2026: 02:00 CET jumps to 03:00 CEST; the window starts at the jump.
    assert w.window_on(date(2026, 3, 29)) == (utc(2026, 3, 29, 1), utc(2026, 3, 29, 2))
    # 25 October 2026: 03:00 CEST falls back to 02:00 CET; 02:00-03:00 happens twice.
    start, end = w.window_on(date(2026, 10, 25))  # type: ignore[misc]
    assert (start, end) == (utc(2026, 10, 25, 0), utc(2026, 10, 25, 3))
    assert end - start == timedelta(hours=3)


def test_new_york_spring_forward_and_fall_back() -> None:
    w = window(time_zone="America/New_York", start="01:00", end="03:00")
    assert w.window_on(date(2026, 1, 5)) == (utc(2026, 1, 5, 6), utc(2026, 1, 5, 8))
    # 1 November 2026: 02:00 EDT falls back to 01:00 EST: three real hours.
    assert w.window_on(date(2026, 11, 1)) == (utc(2026, 11, 1, 5), utc(2026, 11, 1, 8))
    assert w.active_at(utc(2026, 11, 1, 6, 30))  # 01:30 EST, the second 01:30
    # 8 March 2026: 02:00 EST jumps to 03:00 EDT: one real hour.
    assert w.window_on(date(2026, 3, 8)) == (utc(2026, 3, 8, 6), utc(2026, 3, 8, 7))


def test_a_window_starting_in_the_gap_starts_at_the_transition() -> None:
    w = window(time_zone="America/New_York", start="02:30", end="04:00")
    assert w.next_window(utc(2026, 3, 8, 5)) == (utc(2026, 3, 8, 7), utc(2026, 3, 8, 8))
    # Wholly inside the gap: no window that day; the next one is the day after.
    inside_gap = window(time_zone="America/New_York", start="02:00", end="02:45")
    assert inside_gap.window_on(date(2026, 3, 8)) is None
    assert inside_gap.next_window(utc(2026, 3, 8, 5)) == (
        utc(2026, 3, 9, 6),
        utc(2026, 3, 9, 6, 45),
    )


def test_ends_in_the_repeated_hour() -> None:
    # Ending where the repetition starts: the first 02:00 (the clock never gets
    # back below it).
    w = window(start="22:00", end="02:00")
    assert w.window_on(date(2026, 10, 24)) == (utc(2026, 10, 24, 20), utc(2026, 10, 25, 0))
    # Ending inside it: the second occurrence, so every 02:xx before 02:30 is covered.
    w = window(start="01:00", end="02:30")
    assert w.window_on(date(2026, 10, 25)) == (utc(2026, 10, 24, 23), utc(2026, 10, 25, 1, 30))


def test_crossing_midnight_belongs_to_the_start_day() -> None:
    w = window(days=["fri"], start="22:00", end="02:00")  # Friday night into Saturday
    assert w.window_on(date(2026, 1, 9)) == (utc(2026, 1, 9, 21), utc(2026, 1, 10, 1))
    assert w.active_at(utc(2026, 1, 10, 0, 30))  # Saturday 01:30 local
    assert w.window_on(date(2026, 1, 10)) is None
    assert not w.active_at(utc(2026, 1, 11, 0, 30))  # Sunday 01:30: Saturday is not listed
    whole_day = window(days=["sun"], start="00:00", end="24:00")
    assert whole_day.window_on(date(2026, 3, 29)) == (utc(2026, 3, 28, 23), utc(2026, 3, 29, 22))


def test_days_months_dates_and_validity() -> None:
    weekdays = window(days=["mon-fri"])
    assert weekdays.days == ["mon", "tue", "wed", "thu", "fri"]
    assert weekdays.window_on(date(2026, 1, 9)) is not None  # Friday
    assert weekdays.window_on(date(2026, 1, 10)) is None  # Saturday
    assert window(days=["fri-mon"]).days == ["mon", "fri", "sat", "sun"]

    summer = window(months=["jul-aug", "dec"])
    assert summer.months == [7, 8, 12]
    assert summer.next_window(utc(2026, 1, 5)) == (utc(2026, 7, 1, 0), utc(2026, 7, 1, 2))

    assert window(days_of_month=["-3--1", "1-2"]).days_of_month == [-3, -2, -1, 1, 2]
    last_day = window(days_of_month=[-1, 15])
    assert last_day.next_window(utc(2026, 2, 16)) == (utc(2026, 2, 28, 1), utc(2026, 2, 28, 3))
    assert last_day.window_on(date(2026, 2, 15)) is not None
    assert last_day.window_on(date(2026, 2, 14)) is None

    once = window(dates=["2026-12-24"], start="18:00", end="24:00")
    assert once.next_window(utc(2026, 1, 5)) == (utc(2026, 12, 24, 17), utc(2026, 12, 24, 23))
    assert once.next_window(utc(2026, 12, 25)) is None

    bounded = window(valid_from="2026-02-01T00:00:00", valid_until="2026-02-03T02:30:00")
    assert bounded.next_window(utc(2026, 1, 5)) == (utc(2026, 2, 1, 1), utc(2026, 2, 1, 3))
    # valid_until (local 02:30) cuts the last window short; after it nothing comes.
    assert bounded.window_on(date(2026, 2, 3)) == (utc(2026, 2, 3, 1), utc(2026, 2, 3, 1, 30))
    assert bounded.next_window(utc(2026, 2, 3, 2)) is None
    assert bounded.windows(utc(2026, 1, 1), utc(2027, 1, 1)) == [
        (utc(2026, 2, 1, 1), utc(2026, 2, 1, 3)),
        (utc(2026, 2, 2, 1), utc(2026, 2, 2, 3)),
        (utc(2026, 2, 3, 1), utc(2026, 2, 3, 1, 30)),
    ]


@pytest.mark.parametrize(
    ("overrides", "loc", "fragment"),
    [
        ({"time_zone": "Mars/Olympus"}, ("time_zone",), "unknown time zone"),
        ({"start": "25:00"}, ("start",), "out of range"),
        ({"start": 120}, ("start",), "quoted 'HH:MM'"),
        ({"end": "4pm"}, ("end",), "HH:MM"),
        ({"start": "02:00", "end": "02:00"}, (), "zero length"),
        ({"days": ["someday"]}, ("days",), "unknown weekday"),
        ({"days": []}, ("days",), "must not be empty"),
        ({"months": ["smarch"]}, ("months",), "unknown month"),
        ({"months": ["aug-jul"]}, ("months",), "runs backwards"),
        ({"days_of_month": [32]}, ("days_of_month",), "1 ... 31"),
        ({"days_of_month": ["-3-5"]}, ("days_of_month",), "changes sign"),
        ({"matchers": []}, ("matchers",), "at least one matcher"),
        ({"matchers": ['service=~"pay(ments"']}, ("matchers", 0), "invalid regular expression"),
        ({"valid_from": "2026-02-02T00:00:00Z", "valid_until": "2026-02-01T00:00:00Z"}, (),
         "valid_until is not after valid_from"),
    ],
)  # fmt: skip
def test_bad_windows_are_refused(overrides: dict[str, object], loc: tuple, fragment: str) -> None:
    with pytest.raises(ValidationError) as caught:
        window(**overrides)
    (error,) = caught.value.errors()
    assert error["loc"] == loc and fragment in error["msg"]


def test_window_yaml_errors_name_file_and_line() -> None:
    text = (
        "name: backup\n"
        "matchers: ['signal=~\"queue\\\\..*\"']\n"
        "time_zone: Europe/Moscow\n"
        "start: 18:00\n"  # unquoted: YAML 1.1 reads a number
        'end: "03:20"\n'
    )
    with pytest.raises(ConfigError) as caught:
        parse_yaml_model(text, MaintenanceWindow, source="alerting.yaml")
    assert "alerting.yaml:4" in str(caught.value) and "start" in str(caught.value)
    fixed = parse_yaml_model(text.replace("start: 18:00", 'start: "18:00"'), MaintenanceWindow)
    assert fixed.matches({"signal": "queue.lag"}) and not fixed.matches({"signal": "queues"})


# ------------------------------------------------------------------ properties

START_2024, END_2027 = utc(2024, 1, 1), utc(2028, 1, 1)


def _transitions(tz: ZoneInfo) -> list[datetime]:
    """The DST changes of 2024-2027 (offset changes between consecutive hours)."""
    out = []
    t = START_2024
    while t < END_2027:
        if t.astimezone(tz).utcoffset() != (t + timedelta(hours=1)).astimezone(tz).utcoffset():
            out.append(t + timedelta(hours=1))
        t += timedelta(hours=1)
    return out


TRANSITIONS = {tz.key: _transitions(tz) for tz in (BERLIN, NEW_YORK)}


def instants(zone: str) -> st.SearchStrategy[datetime]:
    """Any instant in 2024-2027, with extra weight within a day of a DST change."""
    uniform = st.integers(0, int((END_2027 - START_2024).total_seconds())).map(
        lambda s: START_2024 + timedelta(seconds=s)
    )
    near = st.tuples(st.sampled_from(TRANSITIONS[zone]), st.integers(-26 * 3600, 26 * 3600)).map(
        lambda p: p[0] + timedelta(seconds=p[1])
    )
    return st.one_of(uniform, near)


_DAY_NAMES = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]

# Windows whose start and end do not fall strictly inside a repeated hour, so
# "active" and "the local time is inside the range" coincide exactly.
CASES = [
    ("Europe/Berlin", None, "02:00", "04:00"),
    ("Europe/Berlin", ["sat-sun"], "22:00", "02:00"),
    ("Europe/Berlin", ["sun"], "01:30", "03:30"),
    ("America/New_York", None, "01:00", "03:00"),
    ("America/New_York", ["mon-fri"], "23:00", "01:00"),
    ("America/New_York", ["sun"], "00:00", "24:00"),
]


def _expected(at: datetime, zone: str, days: list[str] | None, start: str, end: str) -> bool:
    local = at.astimezone(ZoneInfo(zone))
    wall = timedelta(hours=local.hour, minutes=local.minute, seconds=local.second)
    lo = timedelta(hours=int(start[:2]), minutes=int(start[3:]))
    hi = timedelta(hours=int(end[:2]), minutes=int(end[3:]))
    listed = set(days_expanded(days))
    today = _DAY_NAMES[local.weekday()]
    yesterday = _DAY_NAMES[(local.weekday() - 1) % 7]
    if lo < hi:
        return today in listed and lo <= wall < hi
    return (today in listed and wall >= lo) or (yesterday in listed and wall < hi)


def days_expanded(days: list[str] | None) -> list[str]:
    if days is None:
        return _DAY_NAMES
    return MaintenanceWindow(
        name="x", matchers=["a=b"], time_zone="UTC", days=days, start="00:00", end="01:00"
    ).days


@pytest.mark.parametrize(("zone", "days", "start", "end"), CASES)
@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_active_exactly_when_local_time_is_in_range(
    zone: str, days: list[str] | None, start: str, end: str, data: st.DataObject
) -> None:
    w = window(time_zone=zone, start=start, end=end, **({"days": days} if days else {}))
    at = data.draw(instants(zone))
    assert w.active_at(at) is _expected(at, zone, days, start, end), at.astimezone(ZoneInfo(zone))


@pytest.mark.parametrize(("zone", "days", "start", "end"), CASES)
@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_next_window_agrees_with_active_at(
    zone: str, days: list[str] | None, start: str, end: str, data: st.DataObject
) -> None:
    w = window(time_zone=zone, start=start, end=end, **({"days": days} if days else {}))
    at = data.draw(instants(zone))
    found = w.next_window(at)
    assert found is not None
    lo, hi = found
    assert lo < hi and hi > at
    assert w.active_at(at) is (lo <= at)
    assert w.active_at(lo) and w.active_at(hi - timedelta(seconds=1))
    if lo > at:
        # Nothing in between: a random instant before the start is outside every window.
        probe = at + (lo - at) * data.draw(st.floats(0, 0.999))
        assert not w.active_at(probe)
    assert found in w.windows(at, hi)


def test_current_window_and_edited_copies() -> None:
    w = window()
    assert w.current_window(utc(2026, 1, 6, 1, 30)) == (utc(2026, 1, 6, 1), utc(2026, 1, 6, 3))
    assert w.current_window(utc(2026, 1, 6, 3)) is None
    # Windows are remembered per definition: an edited copy computes its own.
    earlier = w.model_copy(update={"start": "01:00"})
    assert earlier.window_on(date(2026, 1, 6)) == (utc(2026, 1, 6, 0), utc(2026, 1, 6, 3))
    assert w.window_on(date(2026, 1, 6)) == (utc(2026, 1, 6, 1), utc(2026, 1, 6, 3))
