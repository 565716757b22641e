"""The server errors fuzzing found, each as a request a person could send:
now a 422 naming the field, and nothing stored."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest
from fastapi.testclient import TestClient

from postmortems.api import create_app
from postmortems.service import Postmortems
from tests.postmortems.conftest import detective, incident_in

INCIDENT = {
    "title": "Wallet payments failing",
    "severity": "P1",
    "service": "translator",
    "incident_class": "bad_release",
    "source": "test",
}


@pytest.fixture
def client(pm: Postmortems) -> Iterator[TestClient]:
    with TestClient(create_app(pm), raise_server_exceptions=False) as c:
        yield c


def _fields(response) -> set[str]:  # type: ignore[no-untyped-def]
    assert response.status_code == 422, response.text
    return {e["field"] for e in response.json()["errors"]}


def test_patching_a_required_action_field_to_null_is_refused(client, pm: Postmortems):
    incident_id = pm.open(incident_in()).incident.id
    action = pm.add_action(incident_id, detective(), "test")
    for field in ("title", "owner", "due_date", "status"):
        response = client.patch(f"/api/actions/{action.id}", json={field: None})
        assert _fields(response) == {field}
    assert client.patch(f"/api/actions/{action.id}", json={"owner": "bob"}).status_code == 200
    assert pm.actions(owner="bob")[0].title == action.title  # the other fields kept


def test_patching_a_required_incident_field_to_null_is_refused(client, pm: Postmortems):
    incident_id = pm.open(incident_in()).incident.id
    response = client.patch(f"/api/incidents/{incident_id}", json={"service": None})
    assert _fields(response) == {"service"}


def test_an_incident_detected_in_year_3750_is_refused_before_any_timeline_draft(client):
    response = client.post(
        "/api/incidents", json={**INCIDENT, "detected_at": "3750-01-01T00:00:00Z"}
    )
    assert _fields(response) == {"detected_at"}
    assert client.get("/api/incidents").json() == []


def test_ids_beyond_64_bits_and_far_instants_are_refused(client, pm: Postmortems):
    incident_id = pm.open(incident_in()).incident.id
    huge = 2**63
    assert _fields(client.get(f"/api/incidents/{huge}")) == {"incident_id"}
    assert _fields(client.patch(f"/api/actions/{huge}", json={"owner": "x"})) == {"action_id"}
    linked = client.post(f"/api/incidents/{incident_id}/alerts", json={"alert_ids": [huge]})
    assert _fields(linked) == {"alert_ids.0"}
    note = client.post(
        f"/api/incidents/{incident_id}/timeline",
        json={"at": "9999-12-31T23:59:59Z", "text": "far"},
    )
    assert _fields(note) == {"at"}
    report = client.get(
        "/api/reports", params={"start": "2026-01-01T00:00:00Z", "end": "9999-12-31T23:59:59Z"}
    )
    assert report.status_code == 422


def test_a_due_date_in_year_9999_is_refused(client, pm: Postmortems):
    incident_id = pm.open(incident_in()).incident.id
    body = detective().model_dump(mode="json") | {"due_date": date(9999, 12, 31).isoformat()}
    assert _fields(client.post(f"/api/incidents/{incident_id}/actions", json=body)) == {"due_date"}


def test_the_web_forms_refuse_bad_input_without_a_server_error(client, pm: Postmortems):
    incident_id = pm.open(incident_in()).incident.id
    action = pm.add_action(incident_id, detective(), "test")
    bogus = client.post(f"/actions/{action.id}/status", data={"status": "bogus"})
    assert bogus.status_code == 422 and "status: one of" in bogus.text
    linked = client.post(f"/incidents/{incident_id}/alerts", data={"alert_ids": str(2**64)})
    assert linked.status_code == 422 and "Alerts not linked" in linked.text
    saved = client.post(f"/incidents/{incident_id}/postmortem", data={"release_id": "r" * 100})
    assert saved.status_code == 422
    far = client.post(
        f"/incidents/{incident_id}/timeline", data={"at": "9999-12-31T23:59", "text": "far"}
    )
    assert far.status_code == 422 and "Timeline entry refused" in far.text
    assert client.get(f"/incidents/{2**64}").status_code == 422


def test_a_failed_timeline_draft_shows_no_internals(pm: Postmortems):
    def failing_drafter(*_args):  # type: ignore[no-untyped-def]
        raise RuntimeError("could not connect to postgresql://gate:hunter2@10.0.0.5/gate")

    pm.drafter = failing_drafter
    incident_id = pm.open(incident_in()).incident.id
    with TestClient(create_app(pm), raise_server_exceptions=False) as client:
        page = client.post(f"/incidents/{incident_id}/timeline", data={"action": "draft"})
    assert page.status_code == 502 and "Drafting the timeline failed (RuntimeError)" in page.text
    assert "hunter2" not in page.text and "10.0.0.5" not in page.text


def test_a_nul_character_in_a_search_is_refused_not_a_database_error(client):
    assert client.get("/api/lessons", params={"q": "\x00wallet"}).status_code == 422
