"""Schemathesis against the sentinel's API (signals, alerts, groups, silences,
on-call, announcements, push, Alertmanager webhook, callbacks) with a valid
token: no generated request may answer a server error."""

from __future__ import annotations

import pytest

from tests.api_fuzz import EXAMPLES, fuzz_app
from tests.identity import ADMIN_HEADERS
from tests.sentinel_service.api_app import sentinel_app  # noqa: F401 - fixture

pytestmark = pytest.mark.slow


def test_sentinel_api_never_answers_a_server_error(sentinel_app):  # noqa: F811
    headers = ADMIN_HEADERS
    stats = fuzz_app(sentinel_app, headers, max_examples=EXAMPLES)
    print(stats.line("sentinel"))
    assert stats.operations >= 20 and stats.cases > 200
    assert stats.server_errors == [], "\n".join(stats.server_errors)
