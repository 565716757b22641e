"""The release pages: every release with its status, and a rolled-back release's canary
against its control, with the judge's decision point marked."""

from __future__ import annotations

import json
import re

import pytest
from fastapi.testclient import TestClient

from common.identity import open_store
from dashboards.console import create_console
from tests.console.conftest import NOW


@pytest.fixture
def client(console_reader, gate_reader):
    reader, _ = console_reader
    with TestClient(create_console(reader, open_store(), clock=lambda: NOW, gate=gate_reader)) as c:
        yield c


def test_the_release_list_marks_the_one_in_flight(client) -> None:
    html = client.get("/releases").text
    assert "in flight: canary" in html
    assert html.index("1.4.1") < html.index("1.4.0")  # newest first
    assert "rolled_back" in html


def test_a_rolled_back_release_charts_canary_against_control_and_the_decision(client) -> None:
    releases = client.get("/releases").text
    rid = re.search(r'href="/releases/(\d+)">translator 1\.4\.0', releases)[1]
    html = client.get(f"/releases/{rid}").text
    assert "canary 20% vs control 0.2%" in html
    data = json.loads(re.search(r'<script id="chart-data"[^>]*>(.*?)</script>', html, re.S)[1])
    t, canary, control = data["columns"]
    assert t == [5, 10, 15, 20, 25, 30, 35, 40]
    assert canary == [pytest.approx(0.2)] * 8
    assert all(v == pytest.approx(0.002, abs=0.002) for v in control)
    assert data["marks"] == [[30.0, "judge: rollback"]]
    assert data["time"] is False


def test_unknown_release_answers_404(client) -> None:
    assert client.get("/releases/999999").status_code == 404
    assert client.get("/releases/0").status_code == 422
