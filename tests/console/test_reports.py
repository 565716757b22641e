"""The reports page: postmortems' incident report by week (incidents, MTTA and MTTR
charted and tabled, to the second) and the translator's daily and weekly figures of
seed 000 §9, each table with its column headers."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from common.db import make_engine
from common.identity import open_store
from dashboards.console import create_console
from tests.console.conftest import NOW
from tests.console.incident_fixtures import incident_records  # noqa: F401 - a fixture


@pytest.fixture
def client(console_reader, incident_records):  # noqa: F811
    reader, _ = console_reader
    app = create_console(
        reader,
        open_store(),
        clock=lambda: NOW,
        postmortems=incident_records.pm,
        translator_db=incident_records.translator,
    )
    with TestClient(app) as c:
        yield c


def _data(html: str, name: str) -> dict:
    return json.loads(re.search(rf'<script id="{name}"[^>]*>(.*?)</script>', html, re.S)[1])


def _table(html: str, table_id: str) -> str:
    start = html.index(f'<table id="{table_id}"')
    return html[start : html.index("</table>", start)]


def test_the_incident_report_charts_incidents_mtta_and_mttr_per_week(client) -> None:
    html = client.get("/reports").text
    assert "Incidents from 2026-01-08 to 2026-03-05" in html  # eight weeks up to today
    data = _data(html, "weekly-data")
    weeks, incidents, mtta, mttr = data["columns"]
    assert len(weeks) == 9  # every week of the period, the quiet ones as 0
    this_week = datetime(2026, 3, 2, tzinfo=UTC).timestamp()  # the Monday before NOW
    assert weeks[-1] == this_week
    assert incidents == [0] * 8 + [1]
    assert mtta[-1] == 3.0 and mttr[-1] == 13.0  # minutes: detected → ack, → resolved
    assert mtta[:-1] == [None] * 8
    weeks_table = _table(html, "weeks")
    assert "<th>Week from</th>" in weeks_table and '<th class="num">MTTA</th>' in weeks_table
    assert "2026-03-02" in weeks_table
    assert "3 min 00 s" in weeks_table and "13 min 00 s" in weeks_table
    phases = _table(html, "phases")
    assert "<th>Phase</th>" in phases
    assert "1 min 00 s" in phases  # passive: started 09:41:00, detected 09:42:00


def test_the_translator_figures_of_the_day_and_the_week(client) -> None:
    html = client.get("/reports").text
    daily = _table(html, "daily")
    assert "<th>Figure</th>" in daily
    for title, value in (("Files created", 3), ("completed", 2), ("failed", 1), ("New users", 1)):
        assert re.search(rf"<td>{title}</td><td class=\"num\">{value}</td>", daily), title
    weekly = _table(html, "weekly")
    assert '<th class="num">Average processing</th>' in weekly
    today = weekly[weekly.index("2026-03-04") :]
    assert "66.7%" in today and "6 min 00 s" in today  # 4 and 8 minutes
    files = _data(html, "files-data")
    assert files["columns"][1][-2:] == [1, 3] and files["columns"][2][-2:] == [1, 2]
    earlier = client.get("/reports?day=2026-03-03").text
    assert "Translator: 2026-03-03" in earlier
    assert re.search(r"<td>Files created</td><td class=\"num\">1</td>", earlier)


def test_a_period_that_ends_before_it_starts_is_refused(client) -> None:
    bad = client.get("/reports?start=2026-03-05&end=2026-03-01")
    assert bad.status_code == 422 and "must end after it starts" in bad.text
    assert client.get("/reports?start=2020-01-01&end=2026-01-01").status_code == 422
    assert client.get("/reports?day=yesterday").status_code == 422


def test_an_unreadable_translator_database_is_named_not_a_500(console_reader, tmp_path) -> None:
    reader, _ = console_reader
    missing = make_engine(f"sqlite:///{tmp_path / 'gone.db'}", read_only=True)
    app = create_console(reader, open_store(), clock=lambda: NOW, translator_db=missing)
    with TestClient(app) as c:
        page = c.get("/reports")
    missing.dispose()
    assert page.status_code == 200
    assert "reading the translator&#39;s database failed (OperationalError)" in page.text
