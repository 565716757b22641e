"""One template per test run and backend: seeded users, two weeks of history and
the sentinel's backfilled signals, copied for every case (see harness.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import fresh_database
from tests.fault_matrix.harness import Template, build_template


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Template]:
    workdir = tmp_path_factory.mktemp("fault_matrix")
    with (
        fresh_database(workdir, "fm_translator") as translator_url,
        fresh_database(workdir, "fm_sentinel") as sentinel_url,
    ):
        yield build_template(workdir, translator_url, sentinel_url)
