"""The web form without a browser: plain form posts, errors next to fields,
nothing typed is lost, the token login."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from common.identity import Role
from postmortems.api import create_app
from postmortems.service import Postmortems
from tests.identity import ANONYMOUS, account


@pytest.fixture
def web(pm: Postmortems) -> Iterator[TestClient]:
    with TestClient(create_app(pm)) as c:
        yield c


def _error_fields(html: str) -> list[str]:
    return re.findall(r'id="error-([^"]+)"', html)


def _open(web: TestClient, **fields: str) -> int:
    data = {
        "title": "Jobs answer 500",
        "severity": "P1",
        "service": "translator",
        "incident_class": "bad_release",
        **fields,
    }
    response = web.post("/incidents/new", data=data, follow_redirects=False)
    assert response.status_code == 303
    return int(response.headers["location"].rsplit("/", 1)[1])


def test_a_bad_new_incident_form_shows_each_error_and_keeps_the_values(web: TestClient) -> None:
    response = web.post(
        "/incidents/new", data={"title": "", "severity": "P1", "service": "", "on_call": "bob"}
    )
    assert response.status_code == 422
    assert set(_error_fields(response.text)) == {"title", "service"}
    assert 'value="bob"' in response.text
    other = web.post(
        "/incidents/new",
        data={"title": "Odd one", "severity": "P3", "service": "x", "incident_class": "other"},
    )
    assert other.status_code == 422 and _error_fields(other.text) == ["class_reason"]


def test_a_refused_postmortem_is_kept_as_a_draft(web: TestClient, pm: Postmortems) -> None:
    iid = _open(web)
    response = web.post(
        f"/incidents/{iid}/postmortem",
        data={
            "root_cause": "A formatter bug sent wrong expiry dates.",
            "resolution": "tbd",
            "business_impact": "",
            "conclusions": "n/a",
            "action": "submit",
        },
    )
    assert response.status_code == 422
    assert _error_fields(response.text) == [
        "resolution",
        "business_impact",
        "conclusions",
        "release_id",
        "rolled_back_at",
    ]
    stored = pm.detail(iid).postmortem
    assert stored is not None and not stored.complete
    assert stored.root_cause == "A formatter bug sent wrong expiry dates."
    page = web.get(f"/incidents/{iid}")
    assert "A formatter bug sent wrong expiry dates." in page.text


def test_close_refusal_lists_what_is_missing(web: TestClient) -> None:
    iid = _open(web)
    response = web.post(f"/incidents/{iid}/close")
    assert response.status_code == 409
    fields = re.findall(r'data-field="([^"]+)"', response.text)
    assert fields[0] == "status" and "detective_action" in fields
    assert "root_cause" in _error_fields(response.text)  # and next to the form's field


def test_action_item_errors_and_status(web: TestClient, pm: Postmortems) -> None:
    iid = _open(web)
    bad = web.post(
        f"/incidents/{iid}/actions",
        data={
            "title": "Monitor",
            "kind": "preventive",
            "owner": "",
            "due_date": "",
            "signal": "payments.failed",
        },
    )
    assert bad.status_code == 422
    assert set(_error_fields(bad.text)) >= {"owner", "due_date"}
    ok = web.post(
        f"/incidents/{iid}/actions",
        data={"title": "Fix it", "kind": "corrective", "owner": "bob", "due_date": "2026-01-09"},
        follow_redirects=False,
    )
    assert ok.status_code == 303
    action = pm.detail(iid).actions[0]
    web.post(f"/actions/{action.id}/status", data={"status": "done"})
    assert pm.detail(iid).actions[0].status == "done"


def test_status_timeline_export_and_other_pages(web: TestClient, pm: Postmortems) -> None:
    iid = _open(web)
    web.post(f"/incidents/{iid}/status", data={"change": "acknowledge"})
    web.post(f"/incidents/{iid}/status", data={"change": "resolved"})
    web.post(
        f"/incidents/{iid}/timeline",
        data={"action": "add", "at": "2026-01-05T11:40", "text": "Release 42 deployed"},
    )
    detail = pm.detail(iid)
    assert detail.status == "resolved" and detail.acknowledged_at is not None
    assert detail.timeline[0].text == "Release 42 deployed"
    bad_link = web.post(f"/incidents/{iid}/alerts", data={"alert_ids": "abc"})
    assert bad_link.status_code == 422 and "Alerts not linked" in bad_link.text
    md = web.get(f"/incidents/{iid}/export.md")
    assert md.status_code == 200 and "attachment" in md.headers["content-disposition"]
    assert web.get("/incidents/999").status_code == 404
    for path in ("/incidents", "/incidents?open=true", "/lessons?q=x", "/reports"):
        assert web.get(path).status_code == 200, path


def test_pages_ask_for_a_token_and_record_its_account(pm: Postmortems) -> None:
    carol = account("carol", Role.responder)
    vic = account("vic", Role.viewer)
    with TestClient(create_app(pm), headers=ANONYMOUS) as web:
        del web.headers["Authorization"]
        first = web.get("/incidents/new", follow_redirects=False)
        assert first.status_code == 303 and first.headers["location"].startswith("/login")
        assert web.get("/incidents", follow_redirects=False).status_code == 303  # reads too
        assert web.post("/incidents/new", data={}, follow_redirects=False).status_code == 303
        wrong = web.post("/login", data={"token": "nope", "next": "/incidents/new"})
        assert wrong.status_code == 403
        # A viewer reads the pages but changes nothing.
        web.post("/login", data={"token": vic, "next": "/incidents"}, follow_redirects=False)
        assert web.get("/incidents").status_code == 200
        refused = web.post("/incidents/new", data={"title": "x"}, follow_redirects=False)
        assert refused.status_code == 403 and "vic is a viewer" in refused.text
        good = web.post(
            "/login", data={"token": carol, "next": "/incidents/new"}, follow_redirects=False
        )
        assert good.status_code == 303 and good.headers["location"] == "/incidents/new"
        iid = _open(web)
    assert pm.detail(iid).lead == "carol"  # the signed-in account, not a typed name
