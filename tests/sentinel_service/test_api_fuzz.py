"""Schemathesis against the sentinel's API (signals, alerts, groups, silences,
on-call, announcements, push, Alertmanager webhook, callbacks) with a valid
token and every check: no server error, and every answer (status, headers,
body) one the schema declares, invalid input refused and valid input accepted."""

from __future__ import annotations

import pytest

from tests.api_fuzz import EXAMPLES, fuzz_app
from tests.identity import ADMIN_HEADERS
from tests.sentinel_service.api_app import sentinel_app  # noqa: F401 - fixture

# slow; on PostgreSQL too, where column types and text rules differ from SQLite
pytestmark = [pytest.mark.slow, pytest.mark.postgres_journey]

NOT_APPLICABLE = {
    "positive_data_acceptance POST /api/silences": (
        "a silence ends after it starts (or after now), which a schema cannot state"
    ),
    "positive_data_acceptance POST /api/announcements": (
        "recipients are the people of the alerting configuration, not of the schema"
    ),
}


def test_sentinel_api_answers_what_its_schema_declares(sentinel_app):  # noqa: F811
    stats = fuzz_app(
        sentinel_app, ADMIN_HEADERS, max_examples=EXAMPLES, excluded_checks=NOT_APPLICABLE
    )
    print(stats.line("sentinel"))
    assert stats.operations >= 20 and stats.cases > 200
    assert stats.server_errors == [], "\n".join(stats.server_errors)
    assert stats.failures == [], "\n".join(stats.failures)
