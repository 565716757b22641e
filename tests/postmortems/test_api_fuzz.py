"""Schemathesis against the postmortems API with a valid token: no generated
request may answer a server error."""

from __future__ import annotations

import pytest

from common.clock import FakeClock
from postmortems.api import create_app
from postmortems.db import Database
from postmortems.service import Postmortems
from postmortems.settings import PostmortemSettings
from tests.api_fuzz import EXAMPLES, fuzz_app
from tests.identity import ADMIN_HEADERS

pytestmark = pytest.mark.slow


def test_postmortems_api_never_answers_a_server_error(
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
        stats = fuzz_app(create_app(service), headers, max_examples=EXAMPLES)
        print(stats.line("postmortems"))
        assert stats.operations >= 15 and stats.cases > 150
        assert stats.server_errors == [], "\n".join(stats.server_errors)
        assert stats.failures == [], "\n".join(stats.failures)
    finally:
        service.db.dispose()
