"""Schemathesis against the translator's API with a valid (admin) token: no
generated request, valid or not, may answer a server error. Bounded examples
per operation (``FUZZ_EXAMPLES``, default 15)."""

from __future__ import annotations

import pytest

from tests.api_fuzz import EXAMPLES, fuzz_app
from tests.helpers import add_user
from translator.app import create_app

pytestmark = pytest.mark.slow


def test_translator_api_never_answers_a_server_error(svc):
    _, headers = add_user(svc, "admin@example.com", admin=True)
    stats = fuzz_app(create_app(svc, run_background=False), headers, max_examples=EXAMPLES)
    print(stats.line("translator"))
    assert stats.operations >= 10 and stats.cases > 100
    assert stats.server_errors == [], "\n".join(stats.server_errors)
    assert stats.failures == [], "\n".join(stats.failures)
