"""A NUL in a JSON body the guard once let through (an application/*+json type, a
body past 4 MiB) is a 422 naming the body on every backend, not a PostgreSQL
error (500)."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from tests.sentinel_service.api_app import sentinel_app  # noqa: F401 - fixture

SILENCE = {"matchers": ["alertname=x"], "duration_minutes": 30, "comment": "a\x00b"}


def test_a_nul_in_a_silence_is_refused_whatever_the_json_type_or_size(sentinel_app):  # noqa: F811
    with TestClient(sentinel_app, raise_server_exceptions=False) as http:
        patch = http.post(
            "/api/silences",
            content=json.dumps(SILENCE).encode(),
            headers={"Content-Type": "application/merge-patch+json"},
        )
        assert patch.status_code == 422 and patch.json()["errors"][0]["field"] == "body"
        big = http.post("/api/silences", json={**SILENCE, "pad": "x" * (5 * 1024 * 1024)})
        assert big.status_code == 422 and big.json()["errors"][0]["field"] == "body"
        assert http.get("/api/silences").json() == []
