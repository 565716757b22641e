"""The open action items page: every action item not done yet across incidents, overdue
first with its badge, then by due date, each linked to its incident; done and cancelled
ones are left out; the page needs a login; an incident with overdue items says how many."""

from __future__ import annotations

import re
from datetime import date

import pytest
from fastapi.testclient import TestClient

from common.identity import open_store
from dashboards.console import create_console
from postmortems.schemas import ActionIn, ActionPatch
from tests.console.conftest import NOW
from tests.console.incident_fixtures import incident_records  # noqa: F401 - a fixture
from tests.identity import ANONYMOUS


@pytest.fixture
def console(console_reader, gate_reader, incident_records):  # noqa: F811
    reader, _ = console_reader
    app = create_console(
        reader,
        open_store(),
        clock=lambda: NOW,
        gate=gate_reader,
        postmortems=incident_records.pm,
        translator_db=incident_records.translator,
    )
    with TestClient(app) as client:
        yield client, incident_records


def _add(records, title: str, owner: str, due: date, status: str = "open") -> int:  # type: ignore[no-untyped-def]
    item = ActionIn(title=title, kind="corrective", owner=owner, due_date=due)
    made = records.pm.add_action(records.incident_id, item, "alice")
    if status != "open":
        records.pm.update_action(made.id, ActionPatch(status=status), "alice")
    return made.id


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


def _rows(html: str) -> list[str]:
    table = html[html.index('id="action-items"') :]
    return re.findall(r'<tr id="action-(\d+)"', table[: table.index("</table>")])


def test_overdue_items_come_first_with_their_badge_and_closed_ones_are_left_out(
    console,
) -> None:
    client, records = console
    later = _add(records, "Contract test for the gateway format", "bob", date(2026, 3, 20))
    soon = _add(records, "Canary every payment method", "carol", date(2026, 3, 10))
    overdue = _add(records, "Page per payment method", "dave", date(2026, 3, 2))
    done = _add(records, "Roll back 1.4.0", "alice", date(2026, 3, 1), status="done")
    dropped = _add(records, "Rewrite the gateway", "erin", date(2026, 3, 3), status="cancelled")

    html = client.get("/actions").text
    assert _rows(html) == [str(overdue), str(soon), str(later)]
    assert str(done) not in _rows(html) and str(dropped) not in _rows(html)
    first = html[html.index(f'id="action-{overdue}"') :]
    first = first[: first.index("</tr>")]
    assert 'class="overdue"' in first and '<span class="badge overdue">overdue</span>' in first
    row = _text(first[first.index(">") + 1 :])
    assert row.startswith("Page per payment method corrective dave 2026-03-02 overdue open #1")
    assert f'href="/incidents/{records.incident_id}#actions"' in first
    assert "Wallet payments failing" in first
    second = html[html.index(f'id="action-{soon}"') :]
    assert "overdue" not in second[: second.index("</tr>")]
    assert '<span class="badge overdue" id="overdue-count">1 overdue</span>' in html
    # the navigation leads here
    assert '<a href="/actions">' in client.get("/").text


def test_an_incident_with_overdue_items_says_how_many(console) -> None:
    client, records = console
    page = client.get(f"/incidents/{records.incident_id}").text
    assert 'id="incident-overdue"' not in page
    _add(records, "Page per payment method", "dave", date(2026, 3, 2))
    _add(records, "Canary every payment method", "carol", date(2026, 3, 1))
    _add(records, "Roll back 1.4.0", "alice", date(2026, 3, 1), status="done")
    page = client.get(f"/incidents/{records.incident_id}").text
    badge = page[page.index('id="incident-overdue"') :]
    assert "2 action items overdue" in _text(badge[: badge.index("</a>")])


def test_the_page_needs_a_login(console) -> None:
    client, _ = console
    r = client.get("/actions", headers=ANONYMOUS, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/actions"


def test_without_postmortems_the_page_says_what_to_configure(console_reader) -> None:
    reader, _ = console_reader
    with TestClient(create_console(reader, open_store(), clock=lambda: NOW)) as client:
        html = client.get("/actions").text
    assert "The postmortems database is not configured" in html
