"""Every secret the platform knows is set to a recognisable value, the
platform is driven through the paths where an upstream or a caller could make
it talk (an LLM provider that echoes the request in its error body, failing
pages, forged and replayed callbacks), and the captured log lines, API
responses and outbox are searched for each secret."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from common.logs import configure_logging
from tests.fakes.openai_server import FakeOpenAIServer, Reply
from tests.helpers import add_user, client_for, make_services

LLM_KEY = "sk-live-SECRET-llm-key-0123456789abcdef"
INTERNAL_URL_HOST = "llm-gateway.internal.example"


def _echoing(status: int) -> Reply:
    """An upstream that puts what it received (key included) into its error body."""
    body = json.dumps(
        {
            "error": {
                "message": f"bad request from Authorization: Bearer {LLM_KEY}",
                "upstream": f"http://{INTERNAL_URL_HOST}:8443/v1/chat/completions",
            }
        }
    )
    return Reply(status=status, raw_body=body.encode(), content=None)


@pytest.fixture
def captured_logs(restore_logging: None) -> Iterator[io.StringIO]:
    stream = io.StringIO()
    configure_logging("DEBUG", stream=stream)
    yield stream


@pytest.mark.parametrize("status", [401, 400, 500])
def test_llm_provider_errors_reach_users_and_logs_as_a_short_code(
    status: int, database_url: str, tmp_path: Path, clock, captured_logs: io.StringIO
):
    with FakeOpenAIServer(default=_echoing(status)) as upstream:
        providers = [
            {"name": "fake", "base_url": upstream.base_url, "api_key": LLM_KEY, "model": "m"}
        ]
        svc = make_services(
            database_url, tmp_path, clock, providers=json.dumps(providers), max_retries=1
        )
        try:
            _, headers = add_user(svc, "a@example.com")
            responses: list[str] = []
            with client_for(svc) as api:
                r = api.post(
                    "/api/files",
                    headers=headers,
                    files={"file": ("a.txt", b"Hello world")},
                    data={"provider": "fake"},
                )
                assert r.status_code == 201, r.text
                file_id = r.json()["file"]["id"]
                for _ in range(3):  # first attempt, the retry, then nothing left
                    svc.workers.drain()
                    clock.advance(timedelta(hours=1))
                for path in (f"/api/files/{file_id}", "/api/jobs", "/api/health", "/metrics"):
                    responses.append(api.get(path, headers=headers).text)
            jobs = json.loads(responses[1])
            assert jobs[0]["status"] == "failed"
            shown = jobs[0]["error_message"]
            assert f"HTTP {status}" in shown  # still says what happened
        finally:
            svc.close()

    logs = captured_logs.getvalue()
    assert "job.attempt_failed" in logs
    for text, where in [(logs, "logs"), *((r, "API") for r in responses)]:
        assert LLM_KEY not in text, where
        assert INTERNAL_URL_HOST not in text, where
    # The provider's own URL (an internal address in production) is not shown to users.
    for r in responses[:2]:
        assert upstream.base_url not in r and "127.0.0.1" not in r
    assert upstream.request_count >= 2  # the key did go where it belongs
