"""One login for the console (a platform token, kept in a cookie), and acting on a
page from it: every page wants a viewer, acknowledging a responder, and what was
done is recorded under the signed-in account."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from common.identity import Role, open_store
from dashboards.console import create_console
from dashboards.console.auth import COOKIE
from sentinel.alerting.models import AlertGroup, AuditEvent
from sentinel.models import Alert
from tests.console.conftest import NOW, add_open_page
from tests.identity import ANONYMOUS, account, bearer


def _client(reader) -> TestClient:  # type: ignore[no-untyped-def]
    return TestClient(create_console(reader, open_store(), clock=lambda: NOW))


def test_without_a_token_every_page_asks_to_sign_in(console_reader) -> None:
    reader, alert_id = console_reader
    with _client(reader) as c:
        for path in ("/", "/signals/payments.failed_ratio", f"/alerts/{alert_id}", "/oncall"):
            r = c.get(path, headers=ANONYMOUS, follow_redirects=False)
            assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")
        # the stylesheet and the chart library stay open: the login page needs them
        assert c.get("/static/console.css", headers=ANONYMOUS).status_code == 200
        acted = c.post(f"/alerts/{alert_id}/resolve", headers=ANONYMOUS, follow_redirects=False)
        assert acted.status_code == 303 and "/login" in acted.headers["location"]


def test_signing_in_keeps_the_token_in_a_cookie_and_a_wrong_one_is_refused(
    console_reader,
) -> None:
    reader, _ = console_reader
    token = account("carol", Role.viewer)
    with _client(reader) as c:
        wrong = c.post("/login", data={"token": "nope", "next": "/oncall"}, headers=ANONYMOUS)
        assert wrong.status_code == 403 and "not valid" in wrong.text
        ok = c.post(
            "/login",
            data={"token": token, "next": "//evil.example/"},
            headers=ANONYMOUS,
            follow_redirects=False,
        )
        assert ok.status_code == 303 and ok.headers["location"] == "/"  # no open redirect
        c.cookies.set(COOKIE, token)
        home = c.get("/", headers=ANONYMOUS)
        assert home.status_code == 200 and "carol (viewer)" in home.text


def test_a_viewer_cannot_act_and_a_responder_acknowledges_as_themselves(console_reader) -> None:
    reader, _ = console_reader
    alert_id = add_open_page(reader.db)
    with _client(reader) as c:
        viewer = c.post(
            f"/alerts/{alert_id}/acknowledge",
            headers=bearer(account("carol", Role.viewer)),
            follow_redirects=False,
        )
        assert viewer.status_code == 403 and "needs a responder" in viewer.text
        responder = bearer(account("sysadmin-1", Role.responder))
        page = c.get(f"/alerts/{alert_id}", headers=responder).text
        assert 'id="acknowledge"' in page
        done = c.post(f"/alerts/{alert_id}/acknowledge", headers=responder)
        assert done.status_code == 200
        assert "acknowledged by <strong>sysadmin-1</strong>" in done.text
        assert 'id="acknowledge"' not in done.text  # nothing left to acknowledge
    with reader.db.session() as s:
        group = s.get(AlertGroup, s.get(Alert, alert_id).group_id)
        assert group.acked_by == "sysadmin-1"
        audit = s.scalars(select(AuditEvent).where(AuditEvent.group_id == group.id)).all()
        assert [(a.kind, a.actor, a.via) for a in audit] == [
            ("acknowledge", "sysadmin-1", "console")
        ]


def test_acting_on_an_unknown_alert_answers_404(console_reader) -> None:
    reader, _ = console_reader
    with _client(reader) as c:
        assert c.post("/alerts/424242/resolve").status_code == 404
        assert c.post("/alerts/1/reboot").status_code == 422
