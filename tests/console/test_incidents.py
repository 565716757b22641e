"""The console's incident pages, as the on-call engineer and the incident lead use them:
an incident with its signal charted over its window and its phases marked, the pages
the sentinel sent, the suspect release, and its postmortem written from the console
by a responder (a viewer only reads it), audited under their account."""

from __future__ import annotations

import json
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from common.identity import Role, open_store
from dashboards.console import create_console
from postmortems.models import AuditEntry
from tests.console.conftest import CARD, NOW, WALLET
from tests.console.incident_fixtures import (  # noqa: F401 - a fixture
    ACKNOWLEDGED,
    COMPLETE,
    DETECTED,
    MITIGATED,
    RESOLVED,
    STARTED,
    incident_records,
)
from tests.identity import account, bearer


@pytest.fixture
def console(console_reader, gate_reader, incident_records):  # noqa: F811
    reader, _ = console_reader
    app = create_console(
        reader,
        open_store(),
        clock=lambda: NOW,
        gate=gate_reader,
        incidents=lambda: incident_records.pm.list(open_only=True),
        postmortems_url="http://pm.example",
        postmortems=incident_records.pm,
        translator_db=incident_records.translator,
    )
    with TestClient(app) as client:
        yield client, incident_records


def _chart(html: str, n: int = 1) -> dict:
    found = re.search(rf'<script id="chart-data-{n}"[^>]*>(.*?)</script>', html, re.S)
    assert found, f"no chart {n}"
    return json.loads(found[1])


def _section(html: str, name: str) -> str:
    start = html.index(f'<section id="{name}"')
    return html[start : html.index("</section>", start)]


def test_the_incident_list_and_the_home_link_the_consoles_own_pages(console) -> None:
    client, records = console
    html = client.get("/incidents").text
    row = html[html.index(f'href="/incidents/{records.incident_id}"') :][:800]
    assert "Wallet payments failing" in row and "resolved" in row
    assert "2026-03-04 09:41:00 UTC" in html  # started, to the second
    assert "13 min 00 s" in html  # the active phase: detected → resolved
    assert 'href="/incidents"' in client.get("/").text  # the nav


def test_the_incident_page_charts_its_signal_over_its_window_with_the_phases_marked(
    console,
) -> None:
    client, records = console
    html = client.get(f"/incidents/{records.incident_id}").text
    data = _chart(html)
    assert data["signal"] == "payments.failed_ratio"
    assert data["names"] == [CARD, WALLET] and data["linked"] == ["method=wallet"]
    times, card, wallet = data["columns"]
    # from 15 minutes before it started (the pad) to now (15 min after would be future)
    assert times[0] == pytest.approx((STARTED.timestamp() - 15 * 60), abs=30)
    assert times[-1] <= NOW.timestamp()
    assert max(v for v in wallet if v is not None) == pytest.approx(0.7)
    assert max(v for v in card if v is not None) == pytest.approx(0.01)
    marks = {label: t for t, label in data["marks"]}
    assert marks["detected"] == DETECTED.timestamp()
    assert marks["acknowledged"] == ACKNOWLEDGED.timestamp()
    assert marks["mitigated"] == MITIGATED.timestamp()
    assert marks["resolved"] == RESOLVED.timestamp()
    assert "release 1.4.0" in marks  # the suspect's start, inside the window
    ((shade_from, shade_to),) = data["shade"]  # the linked alert firing (still, in its record)
    assert shade_from == (NOW.timestamp() - 18 * 60) and shade_to == NOW.timestamp()
    assert "/static/vendor/uplot/uPlot.iife.min.js" in html and "/static/chart.js" in html


def test_the_incident_page_shows_the_pages_sent_and_the_suspect_release(console) -> None:
    client, records = console
    html = client.get(f"/incidents/{records.incident_id}").text
    pages = _section(html, "pages")
    assert "<th>Channel</th>" in pages
    assert "sms" in pages and "alice" in pages
    assert "provider answered 503" in pages and "SM0123456789abcdef" in pages
    assert "2026-03-04 09:42:00 UTC" in pages  # the page created, to the second
    suspect = _section(html, "suspect")
    assert f'href="/releases/{records.release_id}">translator 1.4.0' in suspect
    assert "most suspect" in suspect
    assert "1.4.1" not in suspect  # started after the incident did
    alerts = _section(html, "alerts")
    assert f'href="/alerts/{records.alert_id}"' in alerts and "state-firing" in alerts
    timeline = _section(html, "timeline")
    assert "Acknowledged by alice" in timeline and "2026-03-04 09:45:00 UTC" in timeline


def test_a_viewer_reads_the_postmortem_but_cannot_write_it(console) -> None:
    client, records = console
    viewer = bearer(account("carol", Role.viewer))
    html = client.get(f"/incidents/{records.incident_id}", headers=viewer).text
    assert 'id="submit-postmortem"' not in html
    assert "needs a responder" in html
    refused = client.post(
        f"/incidents/{records.incident_id}/postmortem", data=COMPLETE, headers=viewer
    )
    assert refused.status_code == 403 and "needs a responder" in refused.text
    assert records.pm.detail(records.incident_id).postmortem is None


def test_a_responder_writes_the_postmortem_and_it_is_audited_via_the_console(console) -> None:
    client, records = console
    responder = bearer(account("sysadmin-1", Role.responder))
    url = f"/incidents/{records.incident_id}/postmortem"
    # a bad release's postmortem needs when it was rolled back: refused, kept as a draft
    partial = {k: v for k, v in COMPLETE.items() if k not in ("rolled_back_at", "conclusions")}
    refused = client.post(url, data=partial, headers=responder)
    assert refused.status_code == 422
    form = _section(refused.text, "postmortem")
    assert 'id="error-conclusions"' in form and 'id="error-rolled_back_at"' in form
    assert COMPLETE["root_cause"] in form  # what was typed is still there
    draft = records.pm.detail(records.incident_id).postmortem
    assert draft is not None and not draft.complete and draft.root_cause
    done = client.post(url, data=COMPLETE, headers=responder)
    assert done.status_code == 422  # ... and which release it was
    assert 'id="error-release_id"' in done.text
    assert f'placeholder="{records.release_id}"' in done.text  # the most suspect, offered
    done = client.post(
        url, data=COMPLETE | {"release_id": str(records.release_id)}, headers=responder
    )
    assert done.status_code == 200 and "Postmortem saved" in done.text
    saved = records.pm.detail(records.incident_id).postmortem
    assert saved.complete and saved.submitted_by == "sysadmin-1"
    assert saved.rolled_back_at.isoformat() == "2026-03-04T09:30:55+00:00"
    lessons = _section(done.text, "lessons")
    assert "Canary every payment method" in lessons and "Don&#39;t" in lessons
    with records.pm.db.session() as s:
        audit = s.scalars(
            select(AuditEntry)
            .where(AuditEntry.incident_id == records.incident_id)
            .where(AuditEntry.action.like("postmortem%"))
            .order_by(AuditEntry.id)
        ).all()
        assert [(a.actor, a.action, a.detail) for a in audit] == [
            ("sysadmin-1", "postmortem.draft", {"complete": False, "via": "console"}),
            ("sysadmin-1", "postmortem.draft", {"complete": False, "via": "console"}),
            ("sysadmin-1", "postmortem", {"complete": True, "via": "console"}),
        ]


def test_unknown_incidents_answer_404_and_bad_ids_422(console) -> None:
    client, _ = console
    assert client.get("/incidents/999999").status_code == 404
    assert client.get("/incidents/0").status_code == 422
    assert client.post("/incidents/999999/postmortem", data=COMPLETE).status_code == 404


def test_without_postmortems_the_incident_pages_say_what_to_configure(console_reader) -> None:
    reader, _ = console_reader
    with TestClient(create_console(reader, open_store(), clock=lambda: NOW)) as client:
        assert "CONSOLE_POSTMORTEMS_DATABASE_URL" in client.get("/incidents").text
        assert client.get("/incidents/1").status_code == 404
        html = client.get("/reports").text
        assert "CONSOLE_POSTMORTEMS_DATABASE_URL" in html
        assert "CONSOLE_TRANSLATOR_DATABASE_URL" in html


def test_the_incident_exports_as_markdown(console) -> None:
    client, records = console
    export = client.get(f"/incidents/{records.incident_id}/export.md")
    assert export.status_code == 200
    assert export.headers["content-type"].startswith("text/markdown")
    assert f"# Incident #{records.incident_id}: Wallet payments failing" in export.text
    assert client.get("/incidents/999999/export.md").status_code == 404
