"""The on-call page: now and next, each schedule's layers and a calendar of the coming
weeks, the overrides, silences and maintenance windows; a responder adds an override
from its form (the sentinel's own, audited "via console") and who is on call changes;
a viewer cannot; a form filled wrongly says what is wrong."""

from __future__ import annotations

import re
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select

from common.identity import Role, open_store
from dashboards.console import create_console
from sentinel.alerting.models import AuditEvent, ScheduleOverride
from tests.console.conftest import NOW
from tests.identity import ANONYMOUS, account, bearer

# NOW is Wednesday 13:00 in Moscow: sysadmin-1's business-hours week
OVERRIDE = {
    "schedule": "ops-primary",
    "person": "sysadmin-3",
    "start": "2026-03-04T12:00",
    "end": "2026-03-04T20:00",
    "reason": "sysadmin-1 at the dentist",
}


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def _now_card(html: str) -> str:
    return _text(html[html.index("<h2>Now") : html.index('class="schedule"')])


def _day(html: str, day: str) -> str:
    start = html.index(">", html.index(f'data-day="{day}"')) + 1
    return _text(html[start : html.index('<div class="day', start)]).strip()


def _client(reader) -> TestClient:  # type: ignore[no-untyped-def]
    return TestClient(create_console(reader, open_store(), clock=lambda: NOW))


def test_the_page_shows_now_next_layers_and_a_calendar_of_the_coming_weeks(seeded) -> None:
    client, _ = seeded
    html = client.get("/oncall?days=21").text
    assert "ops-primary sysadmin-1 until 2026-03-04 15:00:00 UTC, then senior-ops-1" in (
        _now_card(html)
    )
    layers = _text(html[html.index('class="layers"') : html.index('class="calendar"')])
    assert "nights-and-weekends : senior-ops-1, senior-ops-2 in turn, handing over daily" in layers
    assert "business-hours : sysadmin-1, sysadmin-2, sysadmin-3" in layers
    assert "mon,tue,wed,thu,fri 09:00–18:00" in layers
    # Monday of this week to the end of the third: 21 days, today marked
    days = re.findall(r'<div class="day[^"]*" data-day="([\d-]+)"', html)
    assert days[0] == "2026-03-02" and days[-1] == "2026-03-22" and len(days) == 21
    assert 'class="day today" data-day="2026-03-04"' in html
    assert _day(html, "2026-03-04") == (
        "Wed 04 Mar 00:00–09:00 senior-ops-2 09:00–18:00 sysadmin-1 18:00–24:00 senior-ops-1"
    )
    assert "09:00–18:00 sysadmin-2" in _day(html, "2026-03-09")  # next week's turn
    assert "00:00–18:00 senior-ops-1" in _day(html, "2026-03-07")  # a weekend day
    # silences and windows are listed below
    assert "LLM provider maintenance" in html and "nightly-backup" in html


def test_a_viewer_sees_no_form_and_cannot_add_an_override(console_reader) -> None:
    reader, _ = console_reader
    viewer = bearer(account("carol", Role.viewer))
    with _client(reader) as client:
        assert 'id="add-override"' not in client.get("/oncall", headers=viewer).text
        r = client.post("/oncall/overrides", data=OVERRIDE, headers=viewer)
        assert r.status_code == 403 and "needs a responder" in r.text
        assert "sysadmin-1 until" in _now_card(client.get("/oncall", headers=viewer).text)
    with reader.db.session() as s:
        assert s.scalars(select(ScheduleOverride)).all() == []
        assert s.scalars(select(AuditEvent)).all() == []


def test_a_responder_adds_an_override_and_who_is_on_call_changes(console_reader) -> None:
    reader, _ = console_reader
    responder = bearer(account("sysadmin-2", Role.responder))
    with _client(reader) as client:
        page = client.get("/oncall", headers=responder).text
        assert 'id="add-override"' in page
        done = client.post("/oncall/overrides", data=OVERRIDE, headers=responder)
        assert done.status_code == 200 and "added, as sysadmin-2" in done.text
        # now: the override's person, until its end (20:00 Moscow), then the night layer
        assert "ops-primary sysadmin-3 until 2026-03-04 17:00:00 UTC, then senior-ops-1" in (
            _now_card(done.text)
        )
        assert _day(done.text, "2026-03-04") == (
            "Wed 04 Mar 00:00–09:00 senior-ops-2 09:00–12:00 sysadmin-1 "
            "12:00–20:00 sysadmin-3 override 20:00–24:00 senior-ops-1"
        )
        listed = _text(done.text[done.text.index('id="overrides"') :])
        assert (
            "ops-primary sysadmin-3 sysadmin-1 at the dentist "
            "2026-03-04 09:00:00 UTC 2026-03-04 17:00:00 UTC sysadmin-2"
        ) in listed
        # the home page's "on call now" reads the same schedule
        assert "sysadmin-3" in client.get("/", headers=responder).text
    with reader.db.session() as s:
        (row,) = s.scalars(select(ScheduleOverride)).all()
        (event,) = s.scalars(select(AuditEvent)).all()
    assert (row.person, row.created_by) == ("sysadmin-3", "sysadmin-2")
    assert (event.kind, event.actor, event.via) == ("override", "sysadmin-2", "console")
    assert event.detail["override_id"] == row.id


def test_a_form_filled_wrongly_says_what_is_wrong_and_keeps_what_was_typed(
    console_reader,
) -> None:
    reader, _ = console_reader
    responder = bearer(account("sysadmin-2", Role.responder))
    with _client(reader) as client:
        for change, words in (
            ({"start": "tomorrow"}, "Start: give a date and time like 2026-03-07T09:00"),
            ({"end": ""}, "End: give a date and time"),
            ({"end": "2026-03-04T11:00"}, "is not after the start"),
            ({"start": "2026-03-01T09:00", "end": "2026-03-02T09:00"}, "ends in the past"),
            ({"end": "2026-05-04T12:00"}, "at most 31 days"),
            ({"person": "mallory"}, "&#39;mallory&#39; is not among the people"),
            ({"schedule": "weekend-crew"}, "choose a schedule (got &#39;weekend-crew&#39;)"),
            ({"reason": "x" * 501}, "longer than 500 characters"),
            ({"end": "9999-12-31T23:59"}, "End: give a time between 1970 and 2100"),
            ({"start": "0001-01-01T00:00"}, "Start: give a time between 1970 and 2100"),
        ):
            r = client.post("/oncall/overrides", data=OVERRIDE | change, headers=responder)
            assert r.status_code == 400, change
            error = r.text[r.text.index('id="override-error"') :]
            assert words in error[: error.index("</p>")], (change, error[:200])
            if "reason" not in change:
                assert 'value="sysadmin-1 at the dentist"' in r.text  # nothing to type again
            assert "sysadmin-1 until" in _now_card(r.text)  # nothing changed
    with reader.db.session() as s:
        assert s.scalars(select(ScheduleOverride)).all() == []


def _add(client: TestClient, headers: dict[str, str], **change: str) -> int:
    done = client.post("/oncall/overrides", data=OVERRIDE | change, headers=headers)
    assert done.status_code == 200, done.text
    return int(re.search(r"Override (\d+) added", done.text).group(1))  # type: ignore[union-attr]


def test_a_responder_removes_an_override_in_force_and_the_rotation_is_back(
    console_reader,
) -> None:
    reader, _ = console_reader
    responder = bearer(account("sysadmin-2", Role.responder))
    with _client(reader) as client:
        added = _add(client, responder)
        page = client.get("/oncall", headers=responder).text
        assert "ops-primary sysadmin-3 until" in _now_card(page)
        assert f'id="remove-override-{added}"' in page
        done = client.post(f"/oncall/overrides/{added}/remove", headers=responder)
        assert done.status_code == 200
        assert f"Override {added} removed, as sysadmin-2" in done.text
        # now: the scheduled person again, and the override is no longer listed
        assert "ops-primary sysadmin-1 until 2026-03-04 15:00:00 UTC" in _now_card(done.text)
        assert f'id="remove-override-{added}"' not in done.text
        # the hours it was in force stay in the calendar: history stays true
        assert "09:00–12:00 sysadmin-1 12:00–13:00 sysadmin-3 override" in (
            _day(done.text, "2026-03-04")
        )
    with reader.db.session() as s:
        (row,) = s.scalars(select(ScheduleOverride)).all()
        removed = s.scalars(select(AuditEvent).where(AuditEvent.kind == "override.removed")).one()
    assert row.ends_at == NOW
    assert (removed.actor, removed.via) == ("sysadmin-2", "console")
    assert (removed.detail["override_id"], removed.detail["outcome"]) == (added, "ended")


def test_an_override_still_to_come_is_deleted_when_removed(console_reader) -> None:
    reader, _ = console_reader
    responder = bearer(account("sysadmin-2", Role.responder))
    with _client(reader) as client:
        added = _add(client, responder, start="2026-03-05T09:00", end="2026-03-05T18:00")
        assert "sysadmin-3 override" in _day(client.get("/oncall", headers=responder).text,
                                             "2026-03-05")  # fmt: skip
        done = client.post(f"/oncall/overrides/{added}/remove", headers=responder)
        assert done.status_code == 200 and "override" not in _day(done.text, "2026-03-05")
    with reader.db.session() as s:
        assert s.scalars(select(ScheduleOverride)).all() == []


def test_an_ended_override_or_an_unknown_one_cannot_be_removed(console_reader) -> None:
    reader, _ = console_reader
    with reader.db.session() as s:
        ended = ScheduleOverride(
            schedule="ops-primary", person="sysadmin-3", starts_at=NOW - timedelta(hours=3),
            ends_at=NOW - timedelta(hours=1), created_by="sysadmin-2", created_at=NOW,
        )  # fmt: skip
        s.add(ended)
        s.flush()
        ended_id = ended.id
    responder = bearer(account("sysadmin-2", Role.responder))
    with _client(reader) as client:
        r = client.post(f"/oncall/overrides/{ended_id}/remove", headers=responder)
        assert r.status_code == 409
        error = r.text[r.text.index('id="remove-error"') :]
        assert f"override {ended_id} already ended" in error[: error.index("</p>")]
        r = client.post("/oncall/overrides/999/remove", headers=responder)
        assert r.status_code == 404 and "no override 999" in r.text
    with reader.db.session() as s:
        (row,) = s.scalars(select(ScheduleOverride)).all()
    assert row.ends_at == NOW - timedelta(hours=1)


def test_only_a_responder_may_remove_an_override(console_reader) -> None:
    reader, _ = console_reader
    responder = bearer(account("sysadmin-2", Role.responder))
    viewer = bearer(account("carol", Role.viewer))
    with _client(reader) as client:
        added = _add(client, responder)
        assert 'id="remove-override-' not in client.get("/oncall", headers=viewer).text
        r = client.post(f"/oncall/overrides/{added}/remove", headers=viewer)
        assert r.status_code == 403 and "needs a responder" in r.text
        r = client.post(
            f"/oncall/overrides/{added}/remove", headers=ANONYMOUS, follow_redirects=False
        )
        assert r.status_code == 303 and r.headers["location"].startswith("/login")
        assert "sysadmin-3 until" in _now_card(client.get("/oncall", headers=viewer).text)
