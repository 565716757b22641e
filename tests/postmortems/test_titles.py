"""Incident titles stay under 80 characters: the platform's are shortened with
"…", a person's longer title is refused with a 422 naming the field."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from common.identity import Role
from postmortems.api import create_app
from postmortems.service import Postmortems
from postmortems.titles import TITLE_LIMIT, compose_title, fit_title
from tests.identity import account
from tests.postmortems.conftest import incident_in

LONG = (
    "Wallet payments are declined for every customer who pays with the in-app wallet "
    "since the morning release"
)


def test_made_titles_are_cut_at_a_word_with_an_ellipsis() -> None:
    cut = fit_title(LONG)
    assert len(cut) < TITLE_LIMIT and cut.endswith("…")
    assert cut.removesuffix("…") == LONG[: len(cut) - 1].rstrip()  # a prefix of the text
    assert LONG.startswith(cut.removesuffix("…")) and LONG[len(cut) - 1] == " "  # at a word
    assert fit_title("short one") == "short one"
    assert fit_title("line\nbreaks  and   spaces") == "line breaks and spaces"


def test_composed_titles_say_what_the_incident_holds() -> None:
    assert compose_title("P0", "translator", ["http.error_ratio"]) == (
        "P0: http.error_ratio on translator"
    )
    assert compose_title("P0", "translator", ["bad release 1.4.2", "http.error_ratio"]) == (
        "P0: bad release 1.4.2 and http.error_ratio on translator"
    )
    three = compose_title(
        "P0", "translator", ["http.error_ratio", "payments.failed{method=wallet}", "jobs.empty"]
    )
    assert three == "P0: http.error_ratio and 2 more on translator"
    huge = compose_title("P1", "translator", ["x" * 200, "y"])
    assert len(huge) < TITLE_LIMIT and huge.endswith("… and 1 more on translator")


def test_the_gate_long_title_is_shortened_a_persons_is_refused(pm: Postmortems) -> None:
    gate = pm.open(
        incident_in(
            title=f"Bad release: translator 1.4.2 by alice rolled back ({LONG})",
            source="release_gate",
        )
    ).incident
    assert len(gate.title) < TITLE_LIMIT and gate.title.endswith("…")
    assert gate.title_author is None  # the platform's: it may be re-made
    with pytest.raises(ValueError, match="under 80 characters"):
        incident_in(title=LONG, source="cli")
    exactly = "x" * (TITLE_LIMIT - 1)
    assert incident_in(title=exactly).title == exactly


@pytest.fixture
def client(pm: Postmortems) -> Iterator[TestClient]:
    with TestClient(create_app(pm)) as c:
        yield c


def test_api_and_web_edits_name_the_title_field(client: TestClient, pm: Postmortems) -> None:
    body = {"title": LONG, "severity": "P2", "service": "translator", "source": "api"}
    refused = client.post("/api/incidents", json=body)
    assert refused.status_code == 422
    [error] = refused.json()["errors"]
    assert error["field"] == "title" and "under 80 characters" in error["message"]

    created = client.post("/api/incidents", json={**body, "title": "Wallet payments declined"})
    assert created.status_code == 201
    incident_id = created.json()["id"]
    assert created.json()["title_author"] == "admin"  # the caller's account

    patched = client.patch(f"/api/incidents/{incident_id}", json={"title": LONG})
    assert patched.status_code == 422
    assert [e["field"] for e in patched.json()["errors"]] == ["title"]
    assert pm.detail(incident_id).title == "Wallet payments declined"  # nothing stored

    page = client.post(f"/incidents/{incident_id}/edit", data={"title": LONG, "severity": "P2"})
    assert page.status_code == 422
    assert 'id="error-title"' in page.text and "under 80 characters" in page.text
    assert LONG in page.text  # what the person typed is shown back, not lost

    new_page = client.post(
        "/incidents/new", data={"title": LONG, "severity": "P2", "service": "translator"}
    )
    assert new_page.status_code == 422 and 'id="error-title"' in new_page.text

    client.cookies.set("postmortem_token", account("carol", Role.responder))
    renamed = client.post(
        f"/incidents/{incident_id}/edit",
        data={"title": "Wallet declines after the 1.4.2 release", "severity": "P2"},
        follow_redirects=False,
    )
    assert renamed.status_code == 303
    detail = pm.detail(incident_id)
    assert detail.title == "Wallet declines after the 1.4.2 release"
    assert detail.title_author == "carol"


def test_the_web_form_edits_an_old_incident_whose_title_is_too_long(
    client: TestClient, pm: Postmortems
) -> None:
    from postmortems.models import Incident

    incident_id = pm.open(incident_in(title="Old incident", severity="P2")).incident.id
    with pm.db.session() as s:  # written before titles had a limit
        s.get(Incident, incident_id).title = LONG  # type: ignore[union-attr]
    saved = client.post(
        f"/incidents/{incident_id}/edit",
        data={"title": LONG, "severity": "P1", "lead": "carol"},
        follow_redirects=False,
    )
    assert saved.status_code == 303  # the untouched title is not an edit
    detail = pm.detail(incident_id)
    assert (detail.severity, detail.lead, detail.title) == ("P1", "carol", LONG)
