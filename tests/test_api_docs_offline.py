"""``/docs`` of every service works offline: in real headless Chromium (Debian's),
Swagger UI renders every operation of the service's OpenAPI document while no
request leaves 127.0.0.1 and the console stays free of errors."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from common.clock import FakeClock
from common.servers import serve_in_thread
from common.yaml_config import parse_yaml_model
from tests.daemons import free_port

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SERVICES = ("translator", "sentinel", "release_gate", "postmortems")


@pytest.fixture
def service_app(
    request: pytest.FixtureRequest, database_url: str, tmp_path: Path, clock: FakeClock
) -> Iterator[Callable[[str], FastAPI]]:
    """Builds the app of a named service on the test database; closes what it opened."""
    closers: list[Callable[[], None]] = []

    def build(name: str) -> FastAPI:
        if name == "translator":
            from tests.helpers import make_services
            from translator.app import create_app

            services = make_services(database_url, tmp_path, clock)
            closers.append(services.close)
            return create_app(services, run_background=False)
        if name == "sentinel":
            from sentinel.api import create_app as sentinel_app
            from sentinel.catalogue import Catalogue
            from sentinel.service import build_sentinel
            from sentinel.settings import SentinelSettings

            sentinel = build_sentinel(
                SentinelSettings(
                    database_url=request.getfixturevalue("sentinel_url"),
                    translator_database_url=database_url,
                ),
                clock=clock,
                catalogue=parse_yaml_model("signals: []", Catalogue),
                migrate=False,
            )
            closers.append(sentinel.close)
            return sentinel_app(sentinel, run_loop=False)
        if name == "release_gate":
            from release_gate.api import create_app as gate_app
            from release_gate.db import Database as GateDatabase
            from tests.release_gate.gate_helpers import forced_judge, make_rig

            gate_db = GateDatabase(f"sqlite:///{tmp_path / 'gate.db'}")
            gate_db.migrate()
            closers.append(gate_db.dispose)
            return gate_app(make_rig(gate_db, clock, judge_fn=forced_judge("promote")).gate)
        from postmortems.api import create_app as pm_app
        from postmortems.db import Database
        from postmortems.service import Postmortems
        from postmortems.settings import PostmortemSettings

        settings = PostmortemSettings(
            database_url=database_url,
            sentinel_database_url=f"sqlite:///{tmp_path / 'no-sentinel.db'}",
        )
        service = Postmortems(settings=settings, db=Database(database_url), clock=clock)
        service.db.migrate()
        closers.append(service.db.dispose)
        return pm_app(service)

    yield build
    for close in reversed(closers):
        close()


@pytest.fixture(scope="module")
def chromium() -> Iterator[object]:
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


def _operations(app: FastAPI) -> int:
    schema = app.openapi()
    methods = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
    return sum(1 for item in schema["paths"].values() for method in item if method in methods)


@pytest.mark.parametrize("name", SERVICES)
def test_docs_page_points_only_at_the_service_itself(
    name: str, service_app: Callable[[str], FastAPI]
) -> None:
    app = service_app(name)
    with TestClient(app) as client:
        page = client.get("/docs")
        assert page.status_code == 200
        assert "cdn" not in page.text and "https://" not in page.text
        for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"):
            assert f"/docs/assets/{asset}" in page.text
            assert client.get(f"/docs/assets/{asset}").status_code == 200
        assert client.get("/redoc").status_code == 404  # ReDoc would load from a CDN


@pytest.mark.parametrize("name", SERVICES)
def test_docs_render_every_operation_offline(
    name: str, service_app: Callable[[str], FastAPI], chromium: object
) -> None:
    from playwright.sync_api import Browser, Route, expect

    app = service_app(name)
    operations = _operations(app)
    assert operations > 0
    browser: Browser = chromium  # type: ignore[assignment]
    context = browser.new_context()
    requested: list[str] = []
    outside: list[str] = []
    errors: list[str] = []

    def only_loopback(route: Route) -> None:
        host = urlsplit(route.request.url).hostname
        if host == "127.0.0.1":
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    context.route("**/*", only_loopback)
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.on("request", lambda r: requested.append(r.url))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        with serve_in_thread(app, "127.0.0.1", free_port()) as url:
            page.goto(f"{url}/docs")
            expect(page.locator(".information-container .title")).to_contain_text(app.title)
            expect(page.locator(".opblock")).to_have_count(operations)
            first_path = next(iter(app.openapi()["paths"]))
            expect(page.locator(".opblock-summary-path").first).to_be_visible()
            assert page.locator(f'.opblock-summary-path[data-path="{first_path}"]').count() >= 1
            page.wait_for_load_state("networkidle")
    finally:
        context.close()
    assert outside == []
    assert all(urlsplit(u).hostname == "127.0.0.1" for u in requested), requested
    assert any(u.endswith("/openapi.json") for u in requested)
    assert errors == []
