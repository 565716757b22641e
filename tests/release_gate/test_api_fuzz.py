"""Schemathesis against the release gate's API with a valid token: no
generated request may answer a server error."""

from __future__ import annotations

import pytest

from common.clock import FakeClock
from release_gate.api import create_app
from tests.api_fuzz import EXAMPLES, fuzz_app
from tests.identity import ADMIN_HEADERS
from tests.release_gate.gate_helpers import forced_judge, make_rig

pytestmark = pytest.mark.slow


def test_release_gate_api_never_answers_a_server_error(gate_db, clock: FakeClock):
    rig = make_rig(gate_db, clock, judge_fn=forced_judge("promote"))
    app = create_app(rig.gate)
    stats = fuzz_app(app, ADMIN_HEADERS, max_examples=EXAMPLES)
    print(stats.line("release gate"))
    assert stats.operations >= 9 and stats.cases > 100
    assert stats.server_errors == [], "\n".join(stats.server_errors)
