"""Calendar feed tokens: a calendar app subscribes to an on-call schedule by URL
(``?feed=``), without a header. The token reads calendars and nothing else, is
kept hashed, and a new one replaces the old. Making one is audited."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from common.identity import IdentityError, Role, open_store
from common.identity.models import FeedToken
from tests.identity import ADMIN, ADMIN_TOKEN, account, bearer
from tests.sentinel_service.api_app import sentinel_app  # noqa: F401 - fixture


def _calendar_app(client: TestClient) -> TestClient:
    """The client as a calendar app: no Authorization header at all."""
    del client.headers["Authorization"]
    return client


def _feed_path(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def _new_feed(http: TestClient, headers: dict[str, str] | None = None) -> dict[str, Any]:
    r = http.post("/api/oncall/feed", headers=headers or {})
    assert r.status_code == 201, r.text
    assert r.headers["cache-control"] == "no-store"
    return r.json()


def test_the_feed_url_gives_the_calendar_without_a_header(sentinel_app):  # noqa: F811
    with TestClient(sentinel_app) as http:
        made = _new_feed(http)
        assert made["token"].startswith("vgf_")
        url = made["urls"]["primary"]
        assert url.startswith("https://sentinel.example.com/api/oncall/primary.ics?feed=vgf_")
        calendar = _calendar_app(http)
        r = calendar.get(_feed_path(url))
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("text/calendar")
        assert r.text.startswith("BEGIN:VCALENDAR")
        assert calendar.get("/api/oncall/primary.ics").status_code == 401  # no token at all


def test_a_wrong_or_replaced_feed_token_is_refused(sentinel_app):  # noqa: F811
    with TestClient(sentinel_app) as http:
        old = _new_feed(http)["urls"]["primary"]
        new = _new_feed(http)["urls"]["primary"]
        calendar = _calendar_app(http)
        assert calendar.get(_feed_path(old)).status_code == 401
        assert calendar.get(_feed_path(new)).status_code == 200
        wrong = "/api/oncall/primary.ics?feed=vgf_" + "x" * 43
        assert calendar.get(wrong).status_code == 401
        # an API token is no feed token
        assert calendar.get(f"/api/oncall/primary.ics?feed={ADMIN_TOKEN}").status_code == 401


def test_a_feed_token_opens_nothing_but_calendars(sentinel_app):  # noqa: F811
    with TestClient(sentinel_app) as http:
        token = _new_feed(http)["token"]
        as_bearer = bearer(token)
        for path in ("/api/oncall/primary.ics", "/api/oncall", "/api/alerts", "/api/whoami"):
            r = http.get(path, headers=as_bearer)
            assert r.status_code == 401, (path, r.text)
        assert http.post("/api/oncall/feed", headers=as_bearer).status_code == 401
        calendar = _calendar_app(http)
        for path in ("/api/oncall", "/api/alerts", "/api/whoami"):
            assert calendar.get(f"{path}?feed={token}").status_code == 401, path


def test_making_a_feed_is_audited_and_only_a_hash_is_kept(sentinel_app):  # noqa: F811
    viewer = account("vera", Role.viewer)
    with TestClient(sentinel_app) as http:
        token = _new_feed(http, bearer(viewer))["token"]
    store = open_store()
    try:
        made = [r for r in store.audit_trail(actor="vera") if r.path == "/api/oncall/feed"]
        assert [(r.method, r.status, r.outcome) for r in made] == [("POST", 201, "done")]
        assert token not in str(made[0].detail)
        with store.db.sessions() as s:
            rows = list(s.scalars(select(FeedToken)))
        assert len(rows) == 1 and rows[0].hint == token[:8]
        assert token not in (rows[0].token_hash, rows[0].hint)
    finally:
        store.dispose()


def test_a_disabled_accounts_feed_stops(sentinel_app):  # noqa: F811
    viewer = account("vic", Role.viewer)
    with TestClient(sentinel_app) as http:
        path = _feed_path(_new_feed(http, bearer(viewer))["urls"]["primary"])
        store = open_store()
        try:
            store.disable("vic")
        finally:
            store.dispose()
        assert _calendar_app(http).get(path).status_code == 401


def test_api_tokens_cannot_take_the_feed_prefix():
    store = open_store()
    try:
        with pytest.raises(IdentityError, match="vgf_"):
            store.issue_token(ADMIN, "x", "vgf_" + "y" * 40)
    finally:
        store.dispose()
