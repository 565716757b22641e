"""iCal export, read back with a small RFC 5545 parser."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sentinel.alerting.schedules import Schedule, load_schedule, shifts, to_ical

EXAMPLE = Path(__file__).parents[2] / "sentinel" / "alerting" / "examples" / "schedules.yaml"
START = datetime(2025, 1, 6, tzinfo=UTC)
END = START + timedelta(days=14)


def unfold(text: str) -> list[str]:
    assert text.endswith("\r\n")
    raw = text.split("\r\n")[:-1]
    assert all("\n" not in line and "\r" not in line for line in raw)
    assert all(len(line.encode("utf-8")) <= 75 for line in raw)
    lines: list[str] = []
    for line in raw:
        if line.startswith((" ", "\t")):
            lines[-1] += line[1:]
        else:
            lines.append(line)
    return lines


def parse_events(text: str) -> list[dict[str, str]]:
    lines = unfold(text)
    assert lines[0] == "BEGIN:VCALENDAR" and lines[-1] == "END:VCALENDAR"
    events: list[dict[str, str]] = []
    current: dict[str, str] | None = None
    for line in lines:
        name, _, value = line.partition(":")
        if line == "BEGIN:VEVENT":
            current = {}
        elif line == "END:VEVENT":
            assert current is not None
            events.append(current)
            current = None
        elif current is not None:
            current[name] = value
    assert current is None
    return events


def ical_time(value: str) -> datetime:
    return datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


def test_one_event_per_shift_with_utc_times() -> None:
    s = load_schedule(EXAMPLE)
    text = to_ical(s, START, END)
    events = parse_events(text)
    expected = shifts(s, START, END)
    assert len(events) == len(expected) > 10
    for event, shift in zip(events, expected, strict=True):
        assert ical_time(event["DTSTART"]) == shift.start
        assert ical_time(event["DTEND"]) == shift.end
        assert shift.person in event["SUMMARY"]
        assert event["DTSTAMP"] == "20250106T000000Z"
    assert len({e["UID"] for e in events}) == len(events)


def test_uids_stable_across_exports() -> None:
    s = load_schedule(EXAMPLE)
    first = {e["DTSTART"]: e["UID"] for e in parse_events(to_ical(s, START, END))}
    later = parse_events(to_ical(s, START + timedelta(days=3), END + timedelta(days=7)))
    shared = [
        e
        for e in later
        if e["DTSTART"] in first and ical_time(e["DTSTART"]) > START + timedelta(days=3)
    ]
    assert shared and all(first[e["DTSTART"]] == e["UID"] for e in shared)


def test_long_and_non_ascii_lines_fold_at_75_octets() -> None:
    s = Schedule.model_validate(
        {
            "name": "Дежурство, основная смена; " * 4,
            "time_zone": "Europe/Moscow",
            "layers": [
                {
                    "name": "слой",
                    "rotation": {"participants": ["Иван Петров"], "start": "2025-01-01T09:00"},
                }
            ],
        }
    )
    text = to_ical(s, START, START + timedelta(days=1))
    raw = text.split("\r\n")
    assert any(line.startswith(" ") for line in raw)  # something was folded
    lines = unfold(text)
    name = next(line for line in lines if line.startswith("X-WR-CALNAME:"))
    assert name == "X-WR-CALNAME:" + ("Дежурство\\, основная смена\\; " * 4)
    assert len(parse_events(text)) == 1
