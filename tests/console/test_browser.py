"""In real headless Chromium (Debian's, never a downloaded one), at a desktop and a
phone width: every console page loads with no console error and no request leaving
the machine, and the signal chart is drawn with its data points. Screenshots go to
tests/artifacts/console/ for a person to look at."""

from __future__ import annotations

import os
import shutil
from datetime import date
from pathlib import Path
from urllib.parse import urlparse

import pytest

from common.identity import Role, open_store
from common.servers import serve_in_thread
from dashboards.console import create_console
from postmortems.schemas import ActionIn
from tests.console.conftest import NOW, add_open_page
from tests.console.incident_fixtures import incident_records  # noqa: F401 - a fixture
from tests.daemons import free_port
from tests.identity import account

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SHOTS = Path(__file__).resolve().parents[1] / "artifacts" / "console"
SIZES = {"desktop": (1280, 800), "phone": (390, 844)}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def chromium():
    if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        if os.environ.get("CI"):
            pytest.fail(f"chromium is missing at {CHROMIUM}")
        pytest.skip(f"chromium is missing at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.mark.parametrize("size", SIZES)
def test_every_page_loads_offline_without_errors(
    console_reader, gate_reader, chromium, size: str
) -> None:
    reader, alert_id = console_reader
    open_alert = add_open_page(reader.db)
    rolled_back = next(r.id for r in gate_reader.recent() if r.version == "1.4.0")
    width, height = SIZES[size]
    # a browser sends no bearer header: it signs in like a person
    context = chromium.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.set_default_timeout(20_000)
    errors: list[str] = []
    outside: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))

    def request(r) -> None:  # type: ignore[no-untyped-def]
        host = urlparse(r.url).hostname
        if host not in (None, "127.0.0.1") and not r.url.startswith("data:"):
            outside.append(r.url)

    page.on("request", request)
    SHOTS.mkdir(parents=True, exist_ok=True)
    app = create_console(reader, open_store(), clock=lambda: NOW, gate=gate_reader)
    try:
        with serve_in_thread(app, "127.0.0.1", free_port()) as url:
            # one login: the first page asks for a token, then every page opens
            page.goto(url + "/")
            assert "/login" in page.url
            page.fill("#token", account("sysadmin-1", Role.responder))
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url(url + "/")
            # the on-call person acknowledges a page from its alert's page
            page.goto(f"{url}/alerts/{open_alert}")
            page.locator("#acknowledge").click()
            page.get_by_text("acknowledged by sysadmin-1").wait_for()
            page.screenshot(path=str(SHOTS / f"acknowledged-{size}.png"), full_page=True)
            for name, path in (
                ("home", "/"),
                ("signal", "/signals/payments.failed_ratio"),
                ("alert", f"/alerts/{alert_id}"),
                ("alerts", "/alerts"),
                ("oncall", "/oncall"),
                ("hosts", "/hosts"),
                ("releases", "/releases"),
                ("release", f"/releases/{rolled_back}"),
            ):
                response = page.goto(url + path)
                assert response is not None and response.status == 200, path
                if name in ("signal", "release"):
                    chart = page.locator("#chart canvas")
                    chart.wait_for()
                    points = int(page.locator("#chart").get_attribute("data-points") or 0)
                    assert points >= (100 if name == "signal" else 8)
                    box = chart.bounding_box()
                    assert box is not None and box["width"] <= width
                    # hovering the chart shows a value in the legend
                    page.mouse.move(box["x"] + box["width"] * 0.9, box["y"] + box["height"] / 2)
                    legend = page.locator(".u-legend").inner_text()
                    assert ("method=wallet" if name == "signal" else "canary error rate") in legend
                    if name == "signal":  # the detector's limit is drawn beside the values
                        assert int(page.locator("#chart").get_attribute("data-bands") or 0) >= 1
                        assert "method=wallet: upper" in legend
                page.screenshot(path=str(SHOTS / f"{name}-{size}.png"), full_page=True)
                # nothing wider than the screen: no sideways scrolling of the page
                scroll = page.evaluate("document.documentElement.scrollWidth")
                assert scroll <= width + 1, f"{path} is {scroll}px wide at {width}px"
    finally:
        context.close()
    assert errors == []
    assert outside == []


@pytest.mark.parametrize("size", SIZES)
def test_an_override_added_through_the_form_shows_up_and_the_chart_has_its_band(
    console_reader, chromium, size: str
) -> None:
    reader, _ = console_reader
    width, height = SIZES[size]
    context = chromium.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.set_default_timeout(20_000)
    errors: list[str] = []
    outside: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))

    def request(r) -> None:  # type: ignore[no-untyped-def]
        host = urlparse(r.url).hostname
        if host not in (None, "127.0.0.1") and not r.url.startswith("data:"):
            outside.append(r.url)

    page.on("request", request)
    SHOTS.mkdir(parents=True, exist_ok=True)
    app = create_console(reader, open_store(), clock=lambda: NOW)
    try:
        with serve_in_thread(app, "127.0.0.1", free_port()) as url:
            page.goto(url + "/oncall")
            page.fill("#token", account("sysadmin-2", Role.responder))
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url(url + "/oncall")
            assert "sysadmin-1" in page.locator("section").first.inner_text()
            # sysadmin-3 takes Wednesday afternoon (Moscow time, the schedule's own)
            page.select_option("#ov-schedule", "ops-primary")
            page.select_option("#ov-person", "sysadmin-3")
            page.fill("#ov-start", "2026-03-04T12:00")
            page.fill("#ov-end", "2026-03-04T20:00")
            page.fill("#ov-reason", "swap with sysadmin-1")
            page.locator("#add-override").click()
            page.get_by_text("added, as sysadmin-2").wait_for()
            now = page.locator("section").first.inner_text()
            assert "sysadmin-3" in now and "sysadmin-1" not in now
            today = page.locator(".calendar .day.today").inner_text()
            assert "12:00–20:00 sysadmin-3" in today and "override" in today
            assert "swap with sysadmin-1" in page.locator("#overrides").inner_text()
            page.screenshot(path=str(SHOTS / f"override-{size}.png"), full_page=True)
            scroll = page.evaluate("document.documentElement.scrollWidth")
            assert scroll <= width + 1, f"/oncall is {scroll}px wide at {width}px"
            # a private calendar address, shown once, that fits a phone's screen too
            page.locator("#make-feed").click()
            page.get_by_text("Your calendar feed is ready").wait_for()
            feed = page.locator("#feed-ops-primary").input_value()
            assert "/api/oncall/ops-primary.ics?feed=vgf_" in feed, feed
            scroll = page.evaluate("document.documentElement.scrollWidth")
            assert scroll <= width + 1, f"the feed makes /oncall {scroll}px wide at {width}px"
            # the swap called off: the rotation's sysadmin-1 is back
            page.locator("#overrides .remove-override button").first.click()
            page.locator("#override-removed").wait_for()
            assert "sysadmin-1" in page.locator("section").first.inner_text()
            assert "swap with sysadmin-1" not in page.locator("#overrides").inner_text()
            # the signal's chart: its values, its limit and the alert it would raise
            page.goto(url + "/signals/payments.failed_ratio")
            page.locator("#chart canvas").wait_for()
            chart = page.locator("#chart")
            assert int(chart.get_attribute("data-points") or 0) >= 100
            assert int(chart.get_attribute("data-bands") or 0) == 2
            assert int(chart.get_attribute("data-would-be") or 0) == 1
            assert page.locator("#would-be-count").inner_text() == "1"
            page.screenshot(path=str(SHOTS / f"signal-band-{size}.png"), full_page=True)
            scroll = page.evaluate("document.documentElement.scrollWidth")
            assert scroll <= width + 1, f"the signal page is {scroll}px wide at {width}px"
    finally:
        context.close()
    assert errors == []
    assert outside == []


@pytest.mark.parametrize("size", SIZES)
def test_the_incident_and_report_pages_load_offline_with_their_charts(
    console_reader,
    gate_reader,
    incident_records,  # noqa: F811
    chromium,
    size: str,
) -> None:
    reader, _ = console_reader
    width, height = SIZES[size]
    context = chromium.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.set_default_timeout(20_000)
    errors: list[str] = []
    outside: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on(
        "request",
        lambda r: (
            outside.append(r.url)
            if urlparse(r.url).hostname not in (None, "127.0.0.1") and not r.url.startswith("data:")
            else None
        ),
    )
    SHOTS.mkdir(parents=True, exist_ok=True)
    app = create_console(
        reader,
        open_store(),
        clock=lambda: NOW,
        gate=gate_reader,
        incidents=lambda: incident_records.pm.list(open_only=True),
        postmortems=incident_records.pm,
        translator_db=incident_records.translator,
    )
    incident = f"/incidents/{incident_records.incident_id}"
    try:
        with serve_in_thread(app, "127.0.0.1", free_port()) as url:
            page.goto(url + "/incidents")
            page.fill("#token", account("lead-1", Role.responder))
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url(url + "/incidents")
            # the incident lead saves a draft of the postmortem from the console
            page.goto(url + incident)
            page.fill("#root_cause", "Release 1.4.0 changed the wallet token format.")
            page.locator("#save-draft").click()
            page.locator("#notice").get_by_text("Draft saved").wait_for()
            # ... and notes on the timeline what the gateway's logs said
            page.fill("#tl_text", "Gateway logs: wallet token rejected")
            page.locator("#add-entry").click()
            page.locator("#timeline").get_by_text("Gateway logs: wallet token rejected").wait_for()
            # an overdue action item, for the open action items page
            overdue = ActionIn(
                title="Page per payment method, with its own threshold",
                kind="detective",
                owner="sysadmin-2",
                due_date=date(2026, 3, 2),
            )
            incident_records.pm.add_action(incident_records.incident_id, overdue, "lead-1")
            for name, path, charts in (
                ("incidents", "/incidents", ()),
                ("incident", incident, ("chart-1",)),
                ("reports", "/reports", ("weekly-chart", "files-chart")),
                ("lessons", "/lessons", ()),
                ("actions", "/actions", ()),
            ):
                response = page.goto(url + path)
                assert response is not None and response.status == 200, path
                for chart_id in charts:
                    canvas = page.locator(f"#{chart_id} canvas")
                    canvas.wait_for()
                    points = int(page.locator(f"#{chart_id}").get_attribute("data-points") or 0)
                    assert points >= (100 if chart_id == "chart-1" else 7), chart_id
                    box = canvas.bounding_box()
                    assert box is not None and box["width"] <= width
                page.screenshot(path=str(SHOTS / f"{name}-{size}.png"), full_page=True)
                scroll = page.evaluate("document.documentElement.scrollWidth")
                assert scroll <= width + 1, f"{path} is {scroll}px wide at {width}px"
    finally:
        context.close()
    assert incident_records.pm.detail(incident_records.incident_id).postmortem is not None
    assert errors == []
    assert outside == []
