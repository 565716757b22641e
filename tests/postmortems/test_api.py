"""The HTTP API: contract 3 as the release gate uses it, the 422 that names each
failing field, the 409 that names what blocks closing, bearer tokens."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from common.clock import FakeClock
from common.identity import AccountKind, Role
from common.servers import serve_in_thread
from postmortems.api import create_app
from postmortems.service import Postmortems
from tests.daemons import free_port
from tests.identity import ADMIN_TOKEN, account, bearer
from tests.postmortems.conftest import COMPLETE

BAD_RELEASE = {
    "title": "Bad release: translator 1.4.2 by alice rolled back (500s)",
    "severity": "P1",
    "service": "translator",
    "incident_class": "bad_release",
    "source": "release_gate",
    "source_ref": "release:42",
    "release_id": "42",
}


@pytest.fixture
def client(pm: Postmortems) -> Iterator[TestClient]:
    with TestClient(create_app(pm)) as c:
        yield c


def _complete_body() -> dict:
    return COMPLETE.model_dump(mode="json")


def test_contract_open_then_attach_then_list(client: TestClient, clock: FakeClock) -> None:
    started = (clock.now() - timedelta(minutes=4)).isoformat()
    created = client.post("/api/incidents", json={**BAD_RELEASE, "started_at": started})
    assert created.status_code == 201
    body = created.json()
    for key in ("id", "title", "severity", "status", "service", "incident_class", "started_at"):
        assert key in body
    assert body["status"] == "open" and body["release_id"] == "42"
    again = client.post("/api/incidents", json={**BAD_RELEASE, "source_ref": "release:43"})
    assert again.status_code == 200  # attached, not duplicated
    assert again.json()["id"] == body["id"]
    listed = client.get("/api/incidents", params={"service": "translator", "open": "true"})
    assert [i["id"] for i in listed.json()] == [body["id"]]
    assert client.get("/api/incidents", params={"service": "other", "open": "true"}).json() == []


def test_the_release_gate_reporter_opens_an_incident(pm: Postmortems, clock: FakeClock) -> None:
    from release_gate.incidents import IncidentReporter

    port = free_port()
    with serve_in_thread(create_app(pm), "127.0.0.1", port) as url:
        reporter = IncidentReporter(postmortems_url=url, token=ADMIN_TOKEN)
        outcome = reporter.bad_release(
            release_id=42,
            service="translator",
            version="1.4.2",
            author="alice",
            reason="canary 500s",
            started_at=clock.now() - timedelta(minutes=3),
            rolled_back_at=clock.now(),
        )
    assert outcome["sent"], outcome
    incident = pm.detail(outcome["incident"]["id"])
    assert incident.incident_class == "bad_release"
    assert incident.source == "release_gate" and incident.source_ref == "release:42"
    assert incident.rolled_back_at == clock.now()
    assert incident.started_at == clock.now() - timedelta(minutes=3)


def test_an_open_incident_freezes_the_gate_until_resolved(pm: Postmortems) -> None:
    from release_gate.guards import Guards
    from tests.postmortems.conftest import incident_in, resolve

    iid = pm.open(incident_in()).incident.id
    with serve_in_thread(create_app(pm), "127.0.0.1", free_port()) as url:
        guards = Guards(sentinel_url=None, postmortems_url=url, postmortems_token=ADMIN_TOKEN)
        frozen = guards.check("translator")
        assert [i["id"] for i in frozen.incidents] == [iid] and not frozen.unreachable
        assert guards.check("payments").incidents == []
        resolve(pm, iid)
        assert guards.check("translator").incidents == []


def test_bad_requests_name_their_fields(client: TestClient) -> None:
    response = client.post("/api/incidents", json={"title": "x", "severity": "P9"})
    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["errors"]}
    assert {"title", "severity", "service"} <= fields
    other = client.post("/api/incidents", json={**BAD_RELEASE, "incident_class": "other"})
    assert other.status_code == 422 and "class_reason" in other.text


def test_an_incomplete_postmortem_answers_422_naming_every_field(client: TestClient) -> None:
    iid = client.post("/api/incidents", json=BAD_RELEASE).json()["id"]
    body = {
        "root_cause": "TBD",
        "resolution": " ",
        "business_impact": "n/a",
        "conclusions": "-",
        "release_id": "",
        "lessons": [],
    }
    response = client.put(f"/api/incidents/{iid}/postmortem", json=body)
    assert response.status_code == 422
    fields = [e["field"] for e in response.json()["errors"]]
    # release_id came from the gate; only the rollback time is still missing.
    assert fields == [
        "root_cause",
        "resolution",
        "business_impact",
        "conclusions",
        "rolled_back_at",
    ]
    assert client.get(f"/api/incidents/{iid}").json()["postmortem"] is None
    draft = client.put(f"/api/incidents/{iid}/postmortem", params={"draft": "true"}, json=body)
    assert draft.status_code == 200 and not draft.json()["postmortem"]["complete"]
    ok = client.put(f"/api/incidents/{iid}/postmortem", json=_complete_body())
    assert ok.status_code == 200 and ok.json()["postmortem"]["complete"]


def test_close_answers_409_with_what_is_missing_until_complete(client: TestClient) -> None:
    iid = client.post("/api/incidents", json=BAD_RELEASE).json()["id"]
    refused = client.post(f"/api/incidents/{iid}/close")
    assert refused.status_code == 409
    missing = [m["field"] for m in refused.json()["missing"]]
    assert missing[0] == "status" and "root_cause" in missing and "detective_action" in missing
    assert client.post(f"/api/incidents/{iid}/transition", json={"acknowledge": True}).json()[
        "acknowledged_at"
    ]
    assert (
        client.post(f"/api/incidents/{iid}/transition", json={"status": "resolved"}).json()[
            "status"
        ]
        == "resolved"
    )
    client.put(f"/api/incidents/{iid}/postmortem", json=_complete_body())
    action = client.post(
        f"/api/incidents/{iid}/actions",
        json={
            "title": "Page on 500s of /api/jobs",
            "kind": "detective",
            "owner": "alice",
            "due_date": "2026-01-09",
            "signal": "http.500_rate",
        },
    )
    assert action.status_code == 201
    assert action.json()["replay"]["would_have_fired"] is True
    closed = client.post(f"/api/incidents/{iid}/close")
    assert closed.status_code == 200 and closed.json()["status"] == "closed"
    late = client.put(f"/api/incidents/{iid}/postmortem", json=_complete_body())
    assert late.status_code == 409
    md = client.get(f"/api/incidents/{iid}/markdown")
    assert md.headers["content-type"].startswith("text/markdown")
    assert "## Postmortem" in md.text and "http.500_rate" in md.text
    lessons = client.get("/api/lessons", params={"q": "payment method"}).json()
    assert [item["incident_id"] for item in lessons] == [iid]


def test_unknown_incidents_are_404(client: TestClient) -> None:
    assert client.get("/api/incidents/999").status_code == 404
    assert client.post("/api/incidents/999/close").status_code == 404


def test_reads_and_writes_need_a_platform_token(pm: Postmortems) -> None:
    viewer = bearer(account("vic", Role.viewer))
    gate = bearer(account("release-gate", Role.release_manager, AccountKind.service))
    with TestClient(create_app(pm)) as c:
        del c.headers["Authorization"]
        assert c.get("/api/health").status_code == 200
        assert c.post("/api/incidents", json=BAD_RELEASE).status_code == 401
        wrong = {"Authorization": "Bearer nope-not-a-token-here"}
        assert c.post("/api/incidents", json=BAD_RELEASE, headers=wrong).status_code == 401
        assert c.get("/api/incidents").status_code == 401  # reads are guarded like the pages
        assert c.get("/api/incidents", headers=viewer).status_code == 200
        assert c.post("/api/incidents", json=BAD_RELEASE, headers=viewer).status_code == 403
        spoof = {**gate, "X-Actor": "alice"}
        assert c.post("/api/incidents", json=BAD_RELEASE, headers=spoof).status_code == 403
        created = c.post("/api/incidents", json=BAD_RELEASE, headers={**gate, "X-Actor": ""})
        assert created.status_code == 201
        assert c.get("/api/incidents", headers=viewer).json()[0]["id"] == created.json()["id"]
        page = c.get("/incidents", follow_redirects=False)
        assert page.status_code == 303 and page.headers["location"].startswith("/login")
    opened = [e.text for e in pm.detail(created.json()["id"]).timeline if e.kind == "status"]
    assert opened[0].endswith("by release-gate")


def test_actions_and_timeline_routes(client: TestClient, clock: FakeClock) -> None:
    iid = client.post("/api/incidents", json=BAD_RELEASE).json()["id"]
    action = client.post(
        f"/api/incidents/{iid}/actions",
        json={
            "title": "Fix the formatter",
            "kind": "corrective",
            "owner": "bob",
            "due_date": "2026-01-01",
        },
    ).json()
    assert [a["id"] for a in client.get("/api/actions", params={"overdue": "true"}).json()] == [
        action["id"]
    ]
    done = client.patch(f"/api/actions/{action['id']}", json={"status": "done"})
    assert done.json()["status"] == "done"
    assert client.get("/api/actions", params={"overdue": "true"}).json() == []
    bad = client.post(f"/api/incidents/{iid}/actions", json={"title": "x", "kind": "nope"})
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} >= {"title", "kind", "owner", "due_date"}
    entry = client.post(
        f"/api/incidents/{iid}/timeline",
        json={"at": (clock.now() - timedelta(minutes=30)).isoformat(), "text": "Release 42 out"},
    )
    assert entry.status_code == 201
    timeline = client.get(f"/api/incidents/{iid}").json()["timeline"]
    assert timeline[0]["text"] == "Release 42 out"


def test_what_an_actions_state_refuses_is_a_409_not_a_422(client: TestClient) -> None:
    """A well-formed request refused because of the action as it stands (no
    signal to replay; a signal on an action that is not detective) is a conflict:
    the request itself was valid, as its schema says."""
    iid = client.post("/api/incidents", json=BAD_RELEASE).json()["id"]
    action = client.post(
        f"/api/incidents/{iid}/actions",
        json={"title": "Fix the formatter", "kind": "corrective", "owner": "bob"}
        | {"due_date": "2026-01-01"},
    ).json()
    replay = client.post(f"/api/actions/{action['id']}/replay")
    assert replay.status_code == 409
    assert replay.json()["errors"] == [
        {"field": "signal", "message": "link the action to a sentinel signal first"}
    ]
    linked = client.patch(f"/api/actions/{action['id']}", json={"signal": "orders.placed"})
    assert linked.status_code == 409 and linked.json()["errors"][0]["field"] == "signal"


def test_a_field_that_cannot_be_cleared_offers_no_null(client: TestClient) -> None:
    """The schema of a patch promises what the service takes: a required field
    may be left out, not set to null (which is refused)."""
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    for model, field in (("ActionPatch", "title"), ("IncidentPatch", "started_at")):
        declared = schemas[model]["properties"][field]
        assert "anyOf" not in declared and declared["type"] == "string", (model, declared)
    iid = client.post("/api/incidents", json=BAD_RELEASE).json()["id"]
    assert client.patch(f"/api/incidents/{iid}", json={"started_at": None}).status_code == 422
    title = schemas["IncidentPatch"]["properties"]["title"]["pattern"]
    for blank_padded in ("  ab  ", "\u3000x\u3000"):  # too short once trimmed
        assert (
            client.patch(f"/api/incidents/{iid}", json={"title": blank_padded}).status_code == 422
        )
        assert re.search(title, blank_padded) is None
    assert (
        client.patch(f"/api/incidents/{iid}", json={"title": " Checkout down "}).status_code == 200
    )
    assert re.search(title, " Checkout down ") is not None
