"""The server errors and the nonsense fuzzing found in the release gate's API,
each as a request a person could send: now a 422 naming the field, and no
freeze stored."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from common.clock import FakeClock
from release_gate.api import create_app
from release_gate.db import Database
from release_gate.freezes import FreezeError, create_freeze
from tests.identity import ADMIN_HEADERS
from tests.release_gate.gate_helpers import forced_judge, make_rig

TOKEN = ADMIN_HEADERS
FREEZE = {"reason": "quarter close", "created_by": "admin"}


@pytest.fixture
def api(gate_db: Database, clock: FakeClock) -> Iterator[TestClient]:
    rig = make_rig(gate_db, clock, judge_fn=forced_judge("promote"))
    with TestClient(create_app(rig.gate), raise_server_exceptions=False) as c:
        yield c


def _fields(response) -> set[str]:  # type: ignore[no-untyped-def]
    assert response.status_code == 422, response.text
    return {e["field"].split(".")[-1] for e in response.json()["errors"]}


def test_a_freeze_of_everything_until_year_9554_is_refused(api: TestClient):
    far = api.post(
        "/api/freezes", json={**FREEZE, "expires_at": "9554-01-01T00:00:00Z"}, headers=TOKEN
    )
    assert _fields(far) == {"expires_at"}
    next_year = api.post(
        "/api/freezes", json={**FREEZE, "expires_at": "2027-01-05T12:00:00Z"}, headers=TOKEN
    )
    assert _fields(next_year) == {"expires_at"} and "within 90 days" in next_year.text
    huge = api.post("/api/freezes", json={**FREEZE, "minutes": 1e16}, headers=TOKEN)
    assert _fields(huge) == {"minutes"}
    assert api.get("/api/freezes", headers=TOKEN).json() == []
    week = api.post("/api/freezes", json={**FREEZE, "minutes": 7 * 24 * 60}, headers=TOKEN)
    assert week.status_code == 201


def test_change_failure_rate_over_1e30_days_and_huge_ids_are_refused(api: TestClient):
    assert _fields(api.get("/api/change-failure-rate", params={"days": 1e30}, headers=TOKEN)) == {
        "days"
    }
    assert _fields(api.get(f"/api/releases/{2**63}", headers=TOKEN)) == {"release_id"}
    lift = api.post(f"/api/freezes/{2**63}/lift", json={"lifted_by": "admin"}, headers=TOKEN)
    assert _fields(lift) == {"freeze_id"}


def test_the_cli_path_is_bounded_too(gate_db: Database, clock: FakeClock):
    with gate_db.session() as session, pytest.raises(FreezeError, match="within 90 days"):
        create_freeze(
            session,
            service=None,
            reason="forever",
            created_by="alice",
            expires_at=clock.now() + timedelta(days=365),
            now=clock.now(),
        )


def test_the_cli_refuses_a_freeze_of_years_with_a_usage_error(gate_db_url: str):
    from click.testing import CliRunner

    from release_gate.cli import main

    env = {"GATE_DATABASE_URL": gate_db_url}
    base = ["freeze", "--reason", "r", "--by", "alice"]
    for extra, code in ((["--minutes", "1e16"], 2), (["--until", "9554-01-01T00:00:00+00:00"], 1)):
        out = CliRunner().invoke(main, [*base, *extra], env=env, catch_exceptions=False)
        assert out.exit_code == code, out.output
    history = CliRunner().invoke(main, ["history", "--days", "1e30"], env=env)
    assert history.exit_code == 2
