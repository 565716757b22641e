"""Every service's app on the test database, as a small install has them, and
accounts of each role in the one identity store they share."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from common.clock import FakeClock
from common.identity import AccountKind, Role
from tests.identity import account, bearer


@dataclass
class Platform:
    sentinel: TestClient
    gate: TestClient
    postmortems: TestClient
    translator: TestClient

    def clients(self) -> dict[str, TestClient]:
        return {
            "sentinel": self.sentinel,
            "release_gate": self.gate,
            "postmortems": self.postmortems,
            "translator": self.translator,
        }


def _own_database(postgres: str | None, shared: str, path: Path, database: type) -> str:
    if postgres is not None:
        return shared
    url = f"sqlite:///{path}"
    db = database(url)
    db.migrate()
    db.dispose()
    return url


@pytest.fixture
def platform(
    postgres_database: str | None,
    database_url: str,
    sentinel_url: str,
    svc,  # type: ignore[no-untyped-def]
    tmp_path: Path,
    clock: FakeClock,
) -> Iterator[Platform]:
    from common.yaml_config import parse_yaml_model
    from postmortems.api import create_app as postmortems_app
    from postmortems.db import Database as PmDatabase
    from postmortems.service import Postmortems
    from postmortems.settings import PostmortemSettings
    from release_gate.api import create_app as gate_app
    from release_gate.db import Database as GateDatabase
    from sentinel.api import create_app as sentinel_app
    from sentinel.catalogue.models import Catalogue
    from sentinel.service import build_sentinel
    from sentinel.settings import SentinelSettings
    from tests.helpers import client_for
    from tests.release_gate.gate_helpers import forced_judge, make_rig

    sentinel = build_sentinel(
        SentinelSettings(database_url=sentinel_url, translator_database_url=database_url),
        clock=clock,
        catalogue=parse_yaml_model("signals: []", Catalogue),
        migrate=False,
    )
    gate_db = GateDatabase(
        _own_database(postgres_database, database_url, tmp_path / "gate.db", GateDatabase)
    )
    rig = make_rig(gate_db, clock, judge_fn=forced_judge("promote"))
    pm_url = _own_database(postgres_database, database_url, tmp_path / "pm.db", PmDatabase)
    pm = Postmortems(
        settings=PostmortemSettings(
            database_url=pm_url, sentinel_database_url=f"sqlite:///{tmp_path / 'none.db'}"
        ),
        db=PmDatabase(pm_url),
        clock=clock,
        replayer=lambda *_a, **_k: None,  # type: ignore[arg-type, return-value]
        drafter=lambda *_args: [],
    )
    with client_for(svc) as translator:
        yield Platform(
            sentinel=TestClient(sentinel_app(sentinel, run_loop=False)),
            gate=TestClient(gate_app(rig.gate)),
            postmortems=TestClient(postmortems_app(pm)),
            translator=translator,
        )
    sentinel.close()
    gate_db.dispose()
    pm.db.dispose()


@pytest.fixture
def tokens(platform: Platform) -> dict[str, dict[str, str]]:
    """Bearer headers of one account per role (after the apps: their first start
    makes the store and its admin)."""
    return {
        "viewer": bearer(account("vic", Role.viewer)),
        "responder": bearer(account("alice", Role.responder)),
        "release_manager": bearer(
            account("ci-translator", Role.release_manager, AccountKind.service)
        ),
    }
