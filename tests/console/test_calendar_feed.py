"""The on-call page's "Your calendar feed": anyone signed in makes a feed token
(replacing their old one) and sees its subscribe addresses once, on the answer to
the button only; making one is audited."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

from fastapi.testclient import TestClient

from common.identity import Role, open_store
from common.identity.feeds import feed_reader
from dashboards.console import create_console
from tests.console.conftest import NOW
from tests.identity import ANONYMOUS, account, bearer

SENTINEL = "https://sentinel.example.com"


def _urls(html: str) -> list[str]:
    return re.findall(r'class="feed-url" id="feed-[^"]+" value="([^"]+)"', html)


def test_a_viewer_makes_a_calendar_feed_and_sees_its_address_once(console_reader) -> None:
    reader, _ = console_reader
    viewer = bearer(account("carol", Role.viewer))
    store = open_store()
    try:
        with TestClient(
            create_console(reader, store, clock=lambda: NOW, sentinel_url=SENTINEL)
        ) as client:
            page = client.get("/oncall", headers=viewer).text
            assert "Your calendar feed" in page and 'id="make-feed"' in page
            assert _urls(page) == []
            made = client.post("/oncall/feed", headers=viewer)
            assert made.status_code == 200 and made.headers["cache-control"] == "no-store"
            (url,) = _urls(made.text)
            assert url.startswith(f"{SENTINEL}/api/oncall/ops-primary.ics?feed=vgf_")
            first = parse_qs(urlsplit(url).query)["feed"][0]
            found = feed_reader(store, first)
            assert found is not None and found.name == "carol"
            assert _urls(client.get("/oncall", headers=viewer).text) == []  # shown once
            # a new feed stops the old one
            (again,) = _urls(client.post("/oncall/feed", headers=viewer).text)
            second = parse_qs(urlsplit(again).query)["feed"][0]
            assert feed_reader(store, first) is None
            assert feed_reader(store, second) is not None
        made = [r for r in store.audit_trail(actor="carol") if r.path == "/oncall/feed"]
        assert [(r.service, r.method, r.status) for r in made] == [("console", "POST", 200)] * 2
    finally:
        store.dispose()


def test_making_a_feed_needs_a_sign_in(console_reader) -> None:
    reader, _ = console_reader
    with TestClient(create_console(reader, open_store(), clock=lambda: NOW)) as client:
        r = client.post("/oncall/feed", headers=ANONYMOUS, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/login")
        assert _urls(r.text) == []
