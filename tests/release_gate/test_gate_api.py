"""``release-gate serve``: releases, locks and freezes over HTTP, behind the
platform's tokens: a viewer reads, a release manager deploys and freezes, and
a release's author is the caller's account."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from common.clock import FakeClock
from common.identity import AccountKind, Role
from release_gate.api import create_app
from release_gate.db import Database
from tests.identity import account, bearer
from tests.release_gate.gate_helpers import GateRig, forced_judge, make_rig


@pytest.fixture
def rig(gate_db: Database, clock: FakeClock) -> GateRig:
    return make_rig(gate_db, clock, judge_fn=forced_judge("promote"))


@pytest.fixture
def api(rig: GateRig) -> Iterator[TestClient]:
    with TestClient(create_app(rig.gate)) as client:
        yield client


@pytest.fixture
def tokens() -> dict[str, dict[str, str]]:
    """Release managers alice, bob and ops; a viewer."""
    made = {name: bearer(account(name, Role.release_manager)) for name in ("alice", "bob", "ops")}
    return {**made, "viewer": bearer(account("viewer", Role.viewer))}


def _release(api: TestClient, headers: dict[str, str], version: str = "1.1.0", **extra: object):  # type: ignore[no-untyped-def]
    body = {"service": "translator", "version": version, **extra}
    return api.post("/api/releases?wait=true", json=body, headers=headers)


def test_every_route_but_health_wants_a_token(
    api: TestClient, tokens: dict[str, dict[str, str]]
) -> None:
    assert api.get("/api/health", headers={"Authorization": ""}).status_code == 200
    del api.headers["Authorization"]
    for path in ("/api/releases", "/api/locks", "/api/freezes", "/api/change-failure-rate"):
        assert api.get(path).status_code == 401
        assert api.get(path, headers=bearer("vgl_not-a-token-of-this-store")).status_code == 401
        assert api.get(path, headers={"Authorization": "s3cret-without-scheme"}).status_code == 401
        assert api.get(path, headers=tokens["viewer"]).status_code == 200
    body = {"service": "translator", "version": "1"}
    assert api.post("/api/releases", json=body).status_code == 401
    # A viewer reads but neither deploys nor freezes: 403, and nothing was recorded.
    assert api.post("/api/releases", json=body, headers=tokens["viewer"]).status_code == 403
    freeze = {"reason": "r", "minutes": 5}
    assert api.post("/api/freezes", json=freeze, headers=tokens["viewer"]).status_code == 403
    assert api.get("/api/releases", headers=tokens["viewer"]).json() == []


def test_the_author_is_the_callers_account_not_a_name_in_the_body(
    api: TestClient, tokens: dict[str, dict[str, str]]
) -> None:
    ci = bearer(account("ci-translator", Role.release_manager, AccountKind.service))
    spoof = _release(api, ci, author="alice")
    assert spoof.status_code == 403
    assert "ci-translator" in spoof.json()["detail"]
    assert _release(api, ci).json()["author"] == "ci-translator"
    # The lock's author exemption follows the identity: ci-translator may ship a fix
    # in its cooldown, alice (by token) may not, whatever a body would claim.
    fix = _release(api, ci, "1.1.1")
    assert fix.status_code == 200 and fix.json()["admission"]["exemption"] == "author"
    blocked = _release(api, tokens["alice"], "1.1.2")
    assert blocked.status_code == 409
    assert "locked by ci-translator" in blocked.json()["summary"]


def test_a_release_over_http_and_a_refusal_naming_the_holder(
    api: TestClient, tokens: dict[str, dict[str, str]]
) -> None:
    TOKEN = tokens["viewer"]
    done = _release(api, tokens["alice"])
    assert done.status_code == 200
    receipt = done.json()
    assert receipt["status"] == "promoted" and receipt["exit_code"] == 0

    refused = _release(api, tokens["bob"], "1.2.0")
    assert refused.status_code == 409
    assert refused.json()["exit_code"] == 2
    assert "locked by alice until" in refused.json()["summary"]

    locks = api.get("/api/locks", headers=TOKEN).json()
    assert [(lock["service"], lock["state"], lock["holder"]) for lock in locks] == [
        ("translator", "cooldown", "alice")
    ]
    listed = api.get("/api/releases", headers=TOKEN).json()
    assert [(r["author"], r["status"]) for r in listed] == [
        ("bob", "refused"),
        ("alice", "promoted"),
    ]
    one = api.get(f"/api/releases/{receipt['release_id']}", headers=TOKEN).json()
    assert one["steps"][-1]["step"] == "promoted"
    assert api.get("/api/releases/999", headers=TOKEN).status_code == 404
    rate = api.get("/api/change-failure-rate", headers=TOKEN).json()
    assert rate == {"releases": 1, "failed": 0, "rate": 0.0}


def test_a_release_runs_in_the_background_and_is_polled(api: TestClient) -> None:
    body = {"service": "translator", "version": "1.1.0"}
    accepted = api.post("/api/releases", json=body)
    assert accepted.status_code == 202
    release_id = accepted.json()["release_id"]
    assert accepted.headers["location"] == f"/api/releases/{release_id}"
    for thread in api.app.state.runs:  # type: ignore[attr-defined]
        thread.join(30)
    final = api.get(f"/api/releases/{release_id}").json()
    assert final["status"] == "promoted"


def test_bad_requests_are_422(api: TestClient) -> None:
    unknown = _release(api, {}, service="payments")
    assert unknown.status_code == 422
    [problem] = unknown.json()["errors"]
    assert problem["field"] == "service" and "'translator'" in problem["message"]
    empty = _release(api, {}, version="")
    assert empty.status_code == 422
    blank = _release(api, {}, version="   ")
    assert blank.status_code == 422 and blank.json()["errors"][0]["field"] == "version"


def test_the_schema_names_the_services_that_may_be_released(api: TestClient) -> None:
    """What the gate refuses, its schema says: a client (or a fuzzer) reading it
    sends only configured services and versions that are not blank."""
    document = api.get("/openapi.json").json()
    body = document["paths"]["/api/releases"]["post"]["requestBody"]["content"]
    ref = body["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    fields = document["components"]["schemas"][ref]["properties"]
    assert sorted(fields["service"]["enum"]) == ["billing", "translator"]
    assert fields["version"]["pattern"] == r"\S"


def test_freezes_over_http(api: TestClient, tokens: dict[str, dict[str, str]]) -> None:
    TOKEN = tokens["ops"]
    created = api.post(
        "/api/freezes",
        json={
            "service": "translator",
            "reason": "black friday",
            "created_by": "ops",
            "minutes": 60,
        },
        headers=TOKEN,
    )
    assert created.status_code == 201
    freeze_id = created.json()["id"]
    assert [f["id"] for f in api.get("/api/freezes", headers=TOKEN).json()] == [freeze_id]

    refused = _release(api, tokens["alice"])
    assert refused.status_code == 409
    assert "black friday" in refused.json()["summary"]

    lifted = api.post(f"/api/freezes/{freeze_id}/lift", json={"lifted_by": "ops"}, headers=TOKEN)
    assert lifted.status_code == 200 and lifted.json()["lifted_by"] == "ops"
    assert api.get("/api/freezes", headers=TOKEN).json() == []
    assert _release(api, tokens["alice"]).status_code == 200

    no_expiry = api.post("/api/freezes", json={"reason": "r", "created_by": "ops"}, headers=TOKEN)
    assert no_expiry.status_code == 422


def test_an_unreachable_peer_is_503(rig: GateRig, api: TestClient) -> None:
    rig.peers.down.add("sentinel.test")
    refused = _release(api, {})
    assert refused.status_code == 503
    assert refused.json()["exit_code"] == 4
