"""In real headless Chromium (Debian's, never a downloaded one): an incident lead
opens an incident, submits an incomplete postmortem, sees each error next to
its field, completes it, adds the detective action, and closes the incident.
The pages work without JavaScript, so the browser runs with it disabled."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from common.servers import serve_in_thread
from postmortems.api import create_app
from postmortems.service import Postmortems
from tests.daemons import free_port
from tests.identity import ADMIN_TOKEN

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def browser_page() -> Iterator[object]:
    if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        if os.environ.get("CI"):
            pytest.fail(f"chromium is missing at {CHROMIUM}")
        pytest.skip(f"chromium is missing at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        context = browser.new_context(java_script_enabled=False)
        page = context.new_page()
        page.set_default_timeout(20_000)
        try:
            yield page
        finally:
            context.close()
            browser.close()


def test_an_incident_lead_files_the_postmortem_and_closes(
    pm: Postmortems, browser_page: object
) -> None:
    from playwright.sync_api import Page, expect

    page: Page = browser_page  # type: ignore[assignment]
    port = free_port()
    with serve_in_thread(create_app(pm), "127.0.0.1", port) as url:
        # Sign in with a platform token (the pages ask for one), then open the incident.
        page.goto(f"{url}/incidents")
        page.fill("#token", ADMIN_TOKEN)
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("link", name="Open an incident").first.click()
        page.fill("#title", "Wallet payments declined")
        page.select_option("#severity", "P1")
        page.fill("#service", "translator")
        page.select_option("#incident_class", "broken_functionality")
        page.fill("#lead", "carol")
        page.get_by_role("button", name="Open the incident").click()
        expect(page.locator("h1")).to_contain_text("Wallet payments declined")
        expect(page.locator("#status")).to_have_text("open")
        incident_id = int(page.url.rstrip("/").split("/")[-1])

        # Resolve it.
        page.locator("#resolve").click()
        expect(page.locator("#status")).to_have_text("resolved")

        # An incomplete form: each error appears next to its own field.
        page.fill("#root_cause", "TBD")
        page.fill("#resolution", "   ")
        page.fill("#business_impact", "n/a")
        page.fill("#conclusions", "Payments of one method now page us on a threshold.")
        page.locator("#submit-postmortem").click()
        expect(page.locator("#form-errors")).to_be_visible()
        for field in ("root_cause", "resolution", "business_impact", "release_id"):
            error = page.locator(f"#error-{field}")
            expect(error).to_be_visible()
            # The message sits right after its own input.
            follows = page.locator(f"#{field} + p.error, #pm_{field} + p.error")
            expect(follows).to_have_count(1)
            expect(page.locator(f"#{field}, #pm_{field}")).to_have_class("invalid")
        expect(page.locator("#error-root_cause")).to_contain_text("placeholder")
        expect(page.locator("#error-conclusions")).to_have_count(0)
        # What was typed is still there.
        expect(page.locator("#conclusions")).to_have_value(
            "Payments of one method now page us on a threshold."
        )

        # Closing now is refused, naming what is missing.
        page.locator("#close-incident").click()
        problems = page.locator("#close-problems li")
        fields = [problems.nth(i).get_attribute("data-field") for i in range(problems.count())]
        assert "root_cause" in fields and "detective_action" in fields
        expect(page.locator("#status")).to_have_text("resolved")

        # Complete the form.
        page.fill(
            "#root_cause", "Release 42 sent card expiry dates in a format the gateway refused."
        )
        page.fill("#resolution", "Rolled back release 42, then shipped a fixed formatter.")
        page.fill("#business_impact", "Wallet payments failed for 45 minutes, about 300 orders.")
        page.fill("#pm_release_id", "42")
        page.fill("#dos", "Alert on failed payments per method, not only in total.")
        page.locator("#submit-postmortem").click()
        expect(page.locator("#notice")).to_have_text("Postmortem saved")
        expect(page.locator("p.error")).to_have_count(0)

        # The detective action, with the replay shown.
        page.fill("#ai_title", "Page on failed wallet payments")
        page.select_option("#ai_kind", "detective")
        page.fill("#ai_owner", "alice")
        page.fill("#ai_due", "2026-01-12")
        page.fill("#ai_signal", "payments.failed")
        page.fill("#ai_series", "method=wallet")
        page.locator("#add-action").click()
        expect(page.locator("td.replay")).to_contain_text("would have fired 4 min 00 s before")

        # Close.
        page.locator("#close-incident").click()
        expect(page.locator("#notice")).to_have_text("Incident closed")
        expect(page.locator("#status")).to_have_text("closed")

        page.goto(f"{url}/lessons?q=payments")
        expect(page.locator("table")).to_contain_text("Alert on failed payments per method")

    detail = pm.detail(incident_id)
    assert detail.status == "closed"
    assert detail.postmortem is not None and detail.postmortem.release_id == "42"
    assert detail.lead == "carol"
