"""Schemathesis against the translator's API with every check: no server error,
and every answer (status, headers, body) one the schema declares, invalid input
refused and valid input accepted. Customers' routes get a customer's token, the
operator's route (creating users) the platform admin's. Bounded examples per
operation (``FUZZ_EXAMPLES``, default 15)."""

from __future__ import annotations

import pytest

from tests.api_fuzz import EXAMPLES, fuzz_app
from tests.helpers import add_user
from tests.identity import ADMIN_HEADERS
from translator.app import create_app

# slow; on PostgreSQL too, where column types and text rules differ from SQLite
pytestmark = [pytest.mark.slow, pytest.mark.postgres_journey]

NOT_APPLICABLE = {
    "positive_data_acceptance POST /api/files": (
        "whether a file is a document to translate lies in its name and content"
    ),
    "positive_data_acceptance POST /api/payments/checkout": (
        "plans' prices and promo codes are rows of the database, not of the schema"
    ),
}


def test_translator_api_answers_what_its_schema_declares(svc):
    _, headers = add_user(svc, "customer@example.com", admin=True)
    stats = fuzz_app(
        create_app(svc, run_background=False),
        headers,
        max_examples=EXAMPLES,
        excluded_checks=NOT_APPLICABLE,
        headers_for={"POST /api/users": ADMIN_HEADERS},
    )
    print(stats.line("translator"))
    assert stats.operations >= 10 and stats.cases > 100
    assert stats.server_errors == [], "\n".join(stats.server_errors)
    assert stats.failures == [], "\n".join(stats.failures)
