"""Schemathesis against the postmortems API with a valid token and every check:
no server error, and every answer (status, headers, body) one the schema
declares, invalid input refused and valid input accepted."""

from __future__ import annotations

import pytest

from common.clock import FakeClock
from postmortems.api import create_app
from postmortems.db import Database
from postmortems.service import Postmortems
from postmortems.settings import PostmortemSettings
from tests.api_fuzz import EXAMPLES, fuzz_app
from tests.identity import ADMIN_HEADERS

# slow; on PostgreSQL too, where column types and text rules differ from SQLite
pytestmark = [pytest.mark.slow, pytest.mark.postgres_journey]

_ALERT_IDS = "alert ids must name the sentinel's alerts: rows of another service's database"
NOT_APPLICABLE = {
    "positive_data_acceptance POST /api/incidents": _ALERT_IDS,
    "positive_data_acceptance POST /api/incidents/{incident_id}/alerts": _ALERT_IDS,
    "positive_data_acceptance PUT /api/incidents/{incident_id}/postmortem": (
        "a postmortem must be complete unless the query says draft, which no body schema sees"
    ),
}


def test_postmortems_api_answers_what_its_schema_declares(
    pm_url: str, sentinel_url: str, clock: FakeClock, replayer
):
    settings = PostmortemSettings(database_url=pm_url, sentinel_database_url=sentinel_url)
    service = Postmortems(
        settings=settings,
        db=Database(settings.database_url),
        clock=clock,
        replayer=replayer,
        drafter=lambda *_args: [],
    )
    try:
        headers = ADMIN_HEADERS
        stats = fuzz_app(
            create_app(service), headers, max_examples=EXAMPLES, excluded_checks=NOT_APPLICABLE
        )
        print(stats.line("postmortems"))
        assert stats.operations >= 15 and stats.cases > 150
        assert stats.server_errors == [], "\n".join(stats.server_errors)
        assert stats.failures == [], "\n".join(stats.failures)
    finally:
        service.db.dispose()
