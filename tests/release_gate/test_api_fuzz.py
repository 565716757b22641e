"""Schemathesis against the release gate's API with a valid token and every
check: no server error, and every answer (status, headers, body) one the
schema declares, invalid input refused and valid input accepted."""

from __future__ import annotations

import pytest

from common.clock import FakeClock
from release_gate.api import create_app
from tests.api_fuzz import EXAMPLES, fuzz_app
from tests.identity import ADMIN_HEADERS
from tests.release_gate.gate_helpers import forced_judge, make_rig

# slow; on PostgreSQL too, where column types and text rules differ from SQLite
pytestmark = [pytest.mark.slow, pytest.mark.postgres_journey]

NOT_APPLICABLE = {
    "positive_data_acceptance POST /api/freezes": (
        "a freeze's expires_at must lie in the future, which a schema cannot state"
    ),
}


def test_release_gate_api_answers_what_its_schema_declares(gate_db, clock: FakeClock):
    rig = make_rig(gate_db, clock, judge_fn=forced_judge("promote"))
    app = create_app(rig.gate)
    stats = fuzz_app(app, ADMIN_HEADERS, max_examples=EXAMPLES, excluded_checks=NOT_APPLICABLE)
    print(stats.line("release gate"))
    assert stats.operations >= 9 and stats.cases > 100
    assert stats.server_errors == [], "\n".join(stats.server_errors)
    assert stats.failures == [], "\n".join(stats.failures)
