"""Out of the box nothing that changes state answers without a token, on every
service: 401 without one (or with one sent any way but ``Bearer``), 403 with a
token whose role is too low, and the change once the role allows it. Health
stays open for load balancers; every judged request lands in the shared audit
under its caller."""

from __future__ import annotations

from typing import Any

import pytest

from common.identity import open_store
from tests.identity import ADMIN_HEADERS
from tests.platform_identity.conftest import Platform

FORGED_P0 = {
    "version": "4",
    "groupKey": "{}:{}",
    "truncatedAlerts": 0,
    "status": "firing",
    "receiver": "vigil",
    "groupLabels": {},
    "commonLabels": {},
    "commonAnnotations": {},
    "externalURL": "http://alertmanager:9093",
    "alerts": [
        {
            "status": "firing",
            "labels": {"alertname": "PaymentsDown", "severity": "P0", "service": "payments"},
            "annotations": {"summary": "forged"},
            "startsAt": "2026-01-05T11:59:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph",
            "fingerprint": "f00d",
        }
    ],
}
EVERYTHING = {"matchers": ['service=~".+"'], "duration_minutes": 60, "comment": "shh"}
P0_INCIDENT = {"title": "Payments down", "severity": "P0", "service": "payments"}
NEWS = {"key": "release:1", "title": "translator 1.1.0", "text": "promoted", "state": "done"}
RELEASE = {"service": "translator", "version": "1.1.0"}
FREEZE = {"reason": "black friday", "minutes": 5}

# (service, method, path, body, the least role that may, its success status)
STATE_CHANGES: list[tuple[str, str, str, Any, str, int]] = [
    ("sentinel", "POST", "/api/silences", EVERYTHING, "responder", 201),
    ("sentinel", "POST", "/api/alertmanager/webhook", FORGED_P0, "responder", 200),
    ("sentinel", "POST", "/api/announcements", NEWS, "responder", 202),
    ("release_gate", "POST", "/api/releases?wait=true", RELEASE, "release_manager", 200),
    ("release_gate", "POST", "/api/freezes", FREEZE, "release_manager", 201),
    ("postmortems", "POST", "/api/incidents", P0_INCIDENT, "responder", 201),
    ("translator", "POST", "/api/users", {"email": "new@example.com"}, "admin", 201),
]  # fmt: skip
ROLES = ("viewer", "responder", "release_manager", "admin")


@pytest.fixture
def anonymous(platform: Platform) -> Platform:
    for client in platform.clients().values():
        client.headers.pop("Authorization", None)
    return platform


@pytest.mark.parametrize(
    ("service", "method", "path", "body", "least", "ok"),
    STATE_CHANGES,
    ids=[f"{c[0]}:{c[2]}" for c in STATE_CHANGES],
)
def test_a_state_change_needs_a_token_of_a_role_that_may(
    anonymous: Platform,
    tokens: dict[str, dict[str, str]],
    service: str,
    method: str,
    path: str,
    body: Any,
    least: str,
    ok: int,
) -> None:
    client = anonymous.clients()[service]
    token = ADMIN_HEADERS["Authorization"].removeprefix("Bearer ")

    def call(headers: dict[str, str]) -> int:
        return client.request(method, path, json=body, headers=headers).status_code

    assert call({}) == 401
    assert call({"Authorization": token}) == 401  # the token without its scheme
    assert call({"Authorization": f"Token {token}"}) == 401
    assert call({"Authorization": "Bearer"}) == 401
    assert call({"Authorization": "Bearer vgl_no-such-token-in-this-store"}) == 401
    headers = {**tokens, "admin": ADMIN_HEADERS}
    for role in ROLES[: ROLES.index(least)]:
        assert call(headers[role]) == 403, role
    assert call(headers[least]) == ok


def test_sensitive_reads_need_a_viewer_token(
    anonymous: Platform, tokens: dict[str, dict[str, str]]
) -> None:
    reads = {
        "sentinel": ["/api/alerts", "/api/groups", "/api/silences", "/api/oncall"],
        "release_gate": ["/api/releases", "/api/locks", "/api/freezes"],
        "postmortems": ["/api/incidents", "/api/actions", "/api/lessons"],
    }
    for service, paths in reads.items():
        client = anonymous.clients()[service]
        for path in paths:
            assert client.get(path).status_code == 401, path
            assert client.get(path, headers=tokens["viewer"]).status_code == 200, path
        whoami = client.get("/api/whoami", headers=tokens["viewer"]).json()
        assert whoami == {"name": "vic", "role": "viewer", "kind": "person"}


def test_health_stays_open_everywhere(anonymous: Platform) -> None:
    for service, client in anonymous.clients().items():
        assert client.get("/api/health").status_code in (200, 503), service


def test_the_audit_names_every_caller_and_every_refusal(
    anonymous: Platform, tokens: dict[str, dict[str, str]]
) -> None:
    sentinel = anonymous.sentinel
    assert sentinel.post("/api/silences", json=EVERYTHING).status_code == 401
    assert (
        sentinel.post("/api/silences", json=EVERYTHING, headers=tokens["viewer"]).status_code == 403
    )
    spoof = {**EVERYTHING, "created_by": "bob"}
    assert (
        sentinel.post("/api/silences", json=spoof, headers=tokens["responder"]).status_code == 403
    )
    made = sentinel.post("/api/silences", json=EVERYTHING, headers=tokens["responder"])
    assert made.status_code == 201 and made.json()["created_by"] == "alice"
    incident = anonymous.postmortems.post(
        "/api/incidents", json=P0_INCIDENT, headers=tokens["responder"]
    )
    assert incident.status_code == 201
    assert anonymous.sentinel.get("/api/alerts", headers=tokens["viewer"]).status_code == 200

    store = open_store()
    trail = [
        (r.service, r.actor, r.role, r.method, r.path, r.status, r.outcome)
        for r in reversed(store.audit_trail())
    ]
    store.dispose()
    assert trail == [  # reads are not audited, refusals and changes are
        ("sentinel", None, None, "POST", "/api/silences", 401, "refused"),
        ("sentinel", "vic", "viewer", "POST", "/api/silences", 403, "refused"),
        ("sentinel", "alice", "responder", "POST", "/api/silences", 403, "refused"),
        ("sentinel", "alice", "responder", "POST", "/api/silences", 201, "done"),
        ("postmortems", "alice", "responder", "POST", "/api/incidents", 201, "done"),
    ]
