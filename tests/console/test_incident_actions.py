"""Working an incident from the console, as the on-call responder: reopen and resolve
it, add to its timeline, and close it once its postmortem and its actions are there;
every change through postmortems' service, under their account, audited "via
console". A viewer may do none of it."""

from __future__ import annotations

from datetime import date

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from common.identity import Role, open_store
from dashboards.console import create_console
from postmortems.models import AuditEntry
from postmortems.schemas import ActionIn
from tests.console.conftest import NOW
from tests.console.incident_fixtures import COMPLETE, incident_records  # noqa: F401
from tests.identity import account, bearer


@pytest.fixture
def console(console_reader, gate_reader, incident_records):  # noqa: F811
    reader, _ = console_reader
    app = create_console(
        reader, open_store(), clock=lambda: NOW, gate=gate_reader, postmortems=incident_records.pm
    )
    with TestClient(app) as client:
        yield client, incident_records


def _section(html: str, name: str) -> str:
    start = html.index(f'<section id="{name}"')
    return html[start : html.index("</section>", start)]


def test_a_viewer_can_neither_change_nor_close_an_incident(console) -> None:
    client, records = console
    viewer = bearer(account("carol", Role.viewer))
    base = f"/incidents/{records.incident_id}"
    page = client.get(base, headers=viewer).text
    assert 'id="reopen"' not in page and 'id="close-incident"' not in page
    for path, data in (
        ("/status", {"change": "open"}),
        ("/timeline", {"text": "looked at it"}),
        ("/close", {}),
    ):
        refused = client.post(base + path, data=data, headers=viewer)
        assert refused.status_code == 403, path
    assert records.pm.detail(records.incident_id).status == "resolved"


def test_a_responder_works_the_incident_to_its_close_and_each_step_is_audited(console) -> None:
    client, records = console
    me = bearer(account("sysadmin-1", Role.responder))
    base = f"/incidents/{records.incident_id}"
    # closing too early: 409, with everything that stands in the way
    early = client.post(base + "/close", headers=me)
    assert early.status_code == 409
    blocking = _section(early.text, "close")
    for field in ("postmortem", "action_items", "detective_action"):
        assert f"<strong>{field}</strong>" in blocking
    # reopened (it came back), then resolved again
    reopened = client.post(base + "/status", data={"change": "open"}, headers=me)
    assert reopened.status_code == 200 and 'id="resolve"' in reopened.text
    assert "resolved → open by sysadmin-1" in _section(reopened.text, "timeline")
    client.post(base + "/status", data={"change": "resolved"}, headers=me)
    assert records.pm.detail(records.incident_id).status == "resolved"
    # a timeline entry at a given second
    noted = client.post(
        base + "/timeline",
        data={"at": "2026-03-04T09:44:30", "text": "Wallet gateway logs show token errors"},
        headers=me,
    )
    row = _section(noted.text, "timeline")
    row = row[row.index("2026-03-04 09:44:30 UTC") :][:400]
    assert "Wallet gateway logs show token errors" in row and "sysadmin-1" in row
    assert client.post(base + "/status", data={"change": "reboot"}, headers=me).status_code == 422
    bad_time = client.post(base + "/timeline", data={"at": "soon", "text": "x"}, headers=me)
    assert bad_time.status_code == 422
    # the postmortem written here; the detective action added in postmortems' own pages
    written = client.post(
        base + "/postmortem", data=COMPLETE | {"release_id": str(records.release_id)}, headers=me
    )
    assert written.status_code == 200
    records.pm.add_action(
        records.incident_id,
        ActionIn(
            title="Page on wallet failures per method",
            kind="detective",
            owner="sysadmin-1",
            due_date=date(2026, 3, 20),
            signal="payments.failed_ratio",
            series='method="wallet"',
        ),
        actor="sysadmin-1",
    )
    closed = client.post(base + "/close", headers=me)
    assert closed.status_code == 200 and "Incident closed" in closed.text
    assert records.pm.detail(records.incident_id).status == "closed"
    assert 'id="close-incident"' not in closed.text and 'id="submit-postmortem"' not in closed.text
    lessons = client.get("/lessons?q=canary").text
    assert "Canary every payment method" in lessons
    assert f'href="/incidents/{records.incident_id}"' in lessons
    with records.pm.db.session() as s:
        audit = s.scalars(
            select(AuditEntry)
            .where(AuditEntry.incident_id == records.incident_id)
            .where(AuditEntry.actor == "sysadmin-1")
            .order_by(AuditEntry.id)
        ).all()
        assert [(a.action, a.detail.get("via")) for a in audit] == [
            ("transition", "console"),
            ("transition", "console"),
            ("timeline.add", "console"),
            ("postmortem", "console"),
            ("action.add", None),  # postmortems' own pages
            ("close", "console"),
        ]
