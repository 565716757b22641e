"""The server errors and the nonsense fuzzing found in the sentinel's API,
each as a request a person could send: now a 422 naming the field, and
nothing stored."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.identity import ADMIN_HEADERS
from tests.sentinel_service.api_app import sentinel_app  # noqa: F401 - fixture

TOKEN = ADMIN_HEADERS
SILENCE = {"matchers": ['service="translator"'], "created_by": "admin", "comment": "migration"}


@pytest.fixture
def api(sentinel_app: Any) -> Iterator[TestClient]:  # noqa: F811
    with TestClient(sentinel_app, raise_server_exceptions=False) as client:
        yield client


def _fields(response) -> set[str]:  # type: ignore[no-untyped-def]
    assert response.status_code == 422, response.text
    return {e["field"].split(".")[-1] for e in response.json()["errors"]}


def test_silence_durations_are_bounded_to_weeks(api: TestClient):
    huge = api.post(
        "/api/silences", json={**SILENCE, "duration_minutes": 5_000_000_000}, headers=TOKEN
    )
    assert _fields(huge) == {"duration_minutes"}
    year_9999 = api.post(
        "/api/silences",
        json={**SILENCE, "ends_at": "9999-12-31T23:59:59Z"},
        headers=TOKEN,
    )
    assert _fields(year_9999) == {"ends_at"}
    five_weeks = api.post(
        "/api/silences",
        json={**SILENCE, "starts_at": "2026-01-05T12:00:00Z", "ends_at": "2026-02-09T12:00:00Z"},
        headers=TOKEN,
    )
    assert _fields(five_weeks) == {"ends_at"}
    assert "at most 4 weeks" in five_weeks.text
    assert api.get("/api/silences").json() == []
    ok = api.post("/api/silences", json={**SILENCE, "duration_minutes": 120}, headers=TOKEN)
    assert ok.status_code == 201


def test_action_minutes_and_ids_beyond_range_are_refused(api: TestClient):
    minutes = api.post(
        "/api/groups/1/silence", json={"by": "admin", "minutes": 1e16}, headers=TOKEN
    )
    assert _fields(minutes) == {"minutes"}
    assert _fields(api.get(f"/api/groups/{2**63}")) == {"group_id"}
    assert _fields(api.get(f"/api/alerts/{2**63}")) == {"alert_id"}
    assert _fields(api.delete(f"/api/silences/{2**63}", headers=TOKEN)) == {"silence_id"}
    assert _fields(api.get(f"/api/alerts/{2**31}")) == {"alert_id"}
    assert api.get(f"/api/alerts/{2**31 - 1}").status_code == 404  # the largest id


def test_who_is_on_call_in_year_9999_is_refused(api: TestClient):
    assert _fields(api.get("/api/oncall", params={"at": "9999-12-31T23:59:59Z"})) == {"at"}
    assert _fields(api.get("/api/oncall", params={"at": "0001-01-01T00:00:00Z"})) == {"at"}
    assert api.get("/api/oncall", params={"at": "2026-03-29T02:30:00+02:00"}).status_code == 200


def test_a_pushed_sample_from_the_far_future_is_refused(api: TestClient):
    pushed = api.post(
        "/api/push/orders.placed", json={"value": 1, "t": "9999-01-01T00:00:00Z"}, headers=TOKEN
    )
    assert _fields(pushed) == {"t"}


def test_a_nul_character_is_refused_not_a_database_error(api: TestClient):
    announced = api.post(
        "/api/announcements",
        json={"key": "k1", "title": "a\x00b", "text": "t", "state": "promoted"},
        headers=TOKEN,
    )
    assert announced.status_code == 422


def test_the_cli_refuses_a_silence_of_years_or_one_ending_in_year_9999(monkeypatch, sentinel_url):
    from click.testing import CliRunner

    from sentinel.cli import main

    monkeypatch.setenv("SENTINEL_DATABASE_URL", sentinel_url)
    base = ["silence", "add", 'service="translator"', "--by", "alice", "--comment", "c"]
    for extra in (
        ["--for", "999999999999d"],
        ["--for", "60d"],
        ["--until", "9999-12-31T23:59+00:00"],
    ):
        out = CliRunner().invoke(main, [*base, *extra], catch_exceptions=False)
        assert out.exit_code == 2, out.output
        assert "at most 4 weeks" in out.output or "between 1970 and 2100" in out.output


def test_an_instant_given_as_a_number_is_refused(api: TestClient):
    """The schema says ISO 8601; a number (read as Unix time before) is a 422
    naming the field, in a query and in a body alike."""
    assert _fields(api.get("/api/oncall", params={"at": "0.0"})) == {"at"}
    pushed = api.post("/api/push/orders.placed", json={"value": 1, "t": 1767614400}, headers=TOKEN)
    assert _fields(pushed) == {"t"}
    assert api.get("/api/oncall", params={"at": "2026-01-05T12:00:00Z"}).status_code == 200
