"""Business-hours arithmetic: weekends, holidays, the end of the working day, DST."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from postmortems.calendar import BusinessCalendar

MSK = ZoneInfo("Europe/Moscow")
NY = ZoneInfo("America/New_York")


def msk(*args: int) -> datetime:
    return datetime(*args, tzinfo=MSK)


CAL = BusinessCalendar()  # Europe/Moscow, Mon-Fri 09:00-18:00
# 2026-12-04 is a Friday.


def test_defaults_are_seed_002_working_hours() -> None:
    assert CAL.time_zone == "Europe/Moscow"
    assert CAL.workdays == ["mon", "tue", "wed", "thu", "fri"]
    assert CAL.workday_length == timedelta(hours=9)


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (msk(2026, 12, 4, 8, 59), False),
        (msk(2026, 12, 4, 9, 0), True),
        (msk(2026, 12, 4, 17, 59), True),
        (msk(2026, 12, 4, 18, 0), False),  # the close itself is after hours
        (msk(2026, 12, 5, 12, 0), False),  # Saturday
        (msk(2026, 12, 7, 12, 0), True),  # Monday
    ],
)
def test_is_business_time(at: datetime, expected: bool) -> None:
    assert CAL.is_business_time(at) is expected
    assert CAL.is_business_time(at.astimezone(UTC)) is expected


def test_adding_within_a_day_and_across_the_close() -> None:
    assert CAL.add_business_time(msk(2026, 12, 3, 10, 0), timedelta(hours=2)) == msk(
        2026, 12, 3, 12, 0
    )
    # Thursday 17:00 + 2 h: one hour today, one tomorrow after opening.
    assert CAL.add_business_time(msk(2026, 12, 3, 17, 0), timedelta(hours=2)) == msk(
        2026, 12, 4, 10, 0
    )


def test_a_target_that_fills_the_day_is_due_at_the_close() -> None:
    assert CAL.add_business_time(msk(2026, 12, 3, 9, 0), timedelta(hours=9)) == msk(
        2026, 12, 3, 18, 0
    )


def test_weekend_is_skipped() -> None:
    friday_late = msk(2026, 12, 4, 17, 0)
    assert CAL.add_business_time(friday_late, timedelta(hours=2)) == msk(2026, 12, 7, 10, 0)
    saturday = msk(2026, 12, 5, 11, 0)
    assert CAL.add_business_time(saturday, timedelta(minutes=30)) == msk(2026, 12, 7, 9, 30)
    assert CAL.business_time_between(friday_late, msk(2026, 12, 7, 10, 0)) == timedelta(hours=2)


def test_holidays_are_skipped() -> None:
    cal = BusinessCalendar(holidays=[date(2026, 12, 7)])  # that Monday off
    assert cal.add_business_time(msk(2026, 12, 4, 17, 0), timedelta(hours=2)) == msk(
        2026, 12, 8, 10, 0
    )
    assert not cal.is_business_time(msk(2026, 12, 7, 12, 0))
    assert cal.business_time_between(msk(2026, 12, 4, 0, 0), msk(2026, 12, 9, 0, 0)) == (
        timedelta(hours=18)  # Friday and Tuesday
    )


def test_starting_before_opening_waits_for_it() -> None:
    assert CAL.add_business_time(msk(2026, 12, 3, 3, 0), timedelta(hours=1)) == msk(
        2026, 12, 3, 10, 0
    )
    assert CAL.next_opening(msk(2026, 12, 3, 3, 0)) == msk(2026, 12, 3, 9, 0)
    assert CAL.next_opening(msk(2026, 12, 3, 19, 0)) == msk(2026, 12, 4, 9, 0)


def test_zero_and_negative_amounts() -> None:
    saturday = msk(2026, 12, 5, 11, 0)
    assert CAL.add_business_time(saturday, timedelta(0)) == saturday
    with pytest.raises(ValueError, match="negative"):
        CAL.add_business_time(saturday, timedelta(minutes=-1))
    with pytest.raises(ValueError, match="negative"):
        CAL.add_business_days(saturday, -1)
    # between is signed: how far past a due time
    assert CAL.business_time_between(msk(2026, 12, 3, 12, 0), msk(2026, 12, 3, 10, 0)) == (
        -timedelta(hours=2)
    )


def test_add_business_days() -> None:
    # In business hours: the same local time five working days later.
    assert CAL.add_business_days(msk(2026, 12, 1, 15, 0), 5) == msk(2026, 12, 8, 15, 0)
    # From a Saturday: Monday to Friday, due at Friday's close.
    assert CAL.add_business_days(msk(2026, 12, 5, 11, 0), 5) == msk(2026, 12, 11, 18, 0)
    # A holiday on the way pushes it one working day.
    cal = BusinessCalendar(holidays=[date(2026, 12, 3)])
    assert cal.add_business_days(msk(2026, 12, 1, 15, 0), 5) == msk(2026, 12, 9, 15, 0)


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        CAL.is_business_time(datetime(2026, 12, 3, 12, 0))


def test_bad_calendars_are_refused_with_the_field() -> None:
    with pytest.raises(ValidationError, match="time_zone"):
        BusinessCalendar(time_zone="Moscow/Kremlin")
    with pytest.raises(ValidationError, match="HH:MM"):
        BusinessCalendar(start="9am")
    with pytest.raises(ValidationError, match="before end"):
        BusinessCalendar(start="18:00", end="09:00")
    with pytest.raises(ValidationError, match="working day"):
        BusinessCalendar(workdays=[])
    with pytest.raises(ValidationError):
        BusinessCalendar(workdays=["monday"])


# --- DST in another zone --------------------------------------------------------------

NY_CAL = BusinessCalendar(time_zone="America/New_York")


def test_business_hours_follow_local_time_across_dst() -> None:
    # New York moves its clocks on Sunday 2026-03-08 and 2026-11-01.
    before = NY_CAL.hours_of(date(2026, 3, 6))
    after = NY_CAL.hours_of(date(2026, 3, 9))
    assert before is not None and after is not None
    assert before[0].hour == 14  # 09:00 EST = 14:00 UTC
    assert after[0].hour == 13  # 09:00 EDT = 13:00 UTC
    # Friday 17:00 EST + 2 h lands on Monday 10:00 EDT: 65 h on the wall clock, 64 h real.
    start = datetime(2026, 3, 6, 17, 0, tzinfo=NY)
    due = NY_CAL.add_business_time(start, timedelta(hours=2))
    assert due == datetime(2026, 3, 9, 10, 0, tzinfo=NY)
    assert due - start == timedelta(hours=64)
    assert NY_CAL.business_time_between(start, due) == timedelta(hours=2)


def test_autumn_change_in_new_york() -> None:
    start = datetime(2026, 10, 30, 17, 30, tzinfo=NY)  # Friday, EDT
    due = NY_CAL.add_business_time(start, timedelta(hours=1))
    assert due == datetime(2026, 11, 2, 9, 30, tzinfo=NY)  # Monday, EST
    assert due.astimezone(UTC) == datetime(2026, 11, 2, 14, 30, tzinfo=UTC)


# --- properties -----------------------------------------------------------------------

moments = st.datetimes(
    min_value=datetime(2024, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC)
)
amounts = st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=40))
calendars = st.sampled_from(
    [
        CAL,
        NY_CAL,
        BusinessCalendar(
            time_zone="Asia/Shanghai",
            workdays=["mon", "tue", "wed", "thu", "fri", "sat"],
            start="08:30",
            end="20:15",
            holidays=[date(2026, 1, 1), date(2026, 2, 17), date(2027, 5, 1)],
        ),
    ]
)


@settings(max_examples=150, deadline=None)
@given(calendars, moments, amounts)
def test_between_inverts_add(cal: BusinessCalendar, start: datetime, delta: timedelta) -> None:
    due = cal.add_business_time(start, delta)
    assert due >= start
    assert cal.business_time_between(start, due) == delta


@settings(max_examples=150, deadline=None)
@given(calendars, moments, moments)
def test_add_inverts_between_up_to_idle_time(
    cal: BusinessCalendar, a: datetime, b: datetime
) -> None:
    a, b = min(a, b), max(a, b)
    spent = cal.business_time_between(a, b)
    reached = cal.add_business_time(a, spent)
    # The earliest moment with that much business time: b itself, or the last business
    # moment before it when b is after hours (nothing counts in between).
    assert reached <= b
    assert cal.business_time_between(reached, b) == timedelta(0)
    assert cal.business_time_between(a, b) == -cal.business_time_between(b, a)


@settings(max_examples=150, deadline=None)
@given(
    calendars,
    moments,
    st.timedeltas(min_value=timedelta(seconds=1), max_value=timedelta(minutes=5)),
)
def test_business_time_accrues_only_in_business_hours(
    cal: BusinessCalendar, at: datetime, step: timedelta
) -> None:
    accrued = cal.business_time_between(at, at + step)
    if accrued > timedelta(0):
        assert cal.is_business_time(cal.next_opening(at))
    if cal.is_business_time(at) and cal.is_business_time(at + step):
        hours = cal.hours_of(at.astimezone(cal.zone).date())
        assert hours is not None
        if at + step < hours[1]:
            assert accrued == step
    if not cal.is_business_time(at) and cal.next_opening(at) >= at + step:
        assert accrued == timedelta(0)
