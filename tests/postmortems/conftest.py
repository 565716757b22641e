"""Fixtures of the postmortems tests: the service on the test database, with the
sentinel's replay and timeline drafting replaced by recorders where a test
does not exercise them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from common.clock import FakeClock
from postmortems.db import Database
from postmortems.forms import PostmortemForm
from postmortems.schemas import ActionIn, IncidentIn, TransitionIn
from postmortems.service import Postmortems
from postmortems.settings import PostmortemSettings
from release_gate.db import Database as GateDatabase
from sentinel.db import Database as SentinelDatabase


@dataclass
class FakeReplayer:
    """Stands in for the detector replay; says the detector would have fired 4 min early."""

    calls: list[tuple[str, str | None, datetime, datetime, datetime]] = field(default_factory=list)
    fail_for: set[str] = field(default_factory=set)

    def __call__(
        self, signal: str, series: str | None, start: datetime, end: datetime, detected: datetime
    ) -> dict[str, Any]:
        self.calls.append((signal, series, start, end, detected))
        if signal in self.fail_for:
            raise KeyError(f"signal {signal!r} is not in the catalogue")
        first = detected - timedelta(minutes=4)
        return {
            "signal": signal,
            "series": series,
            "would_have_fired": True,
            "first_alert_at": first.isoformat(),
            "lead_seconds": 240.0,
            "detector": "static",
            "note": "fired 4 min before detection",
        }


@pytest.fixture
def pm_url(database_url: str) -> str:
    db = Database(database_url)
    db.migrate()
    db.dispose()
    return database_url


@pytest.fixture
def sentinel_db(sentinel_url: str) -> Iterator[SentinelDatabase]:
    db = SentinelDatabase(sentinel_url)
    yield db
    db.dispose()


@pytest.fixture
def gate_url(postgres_database: str | None, database_url: str, tmp_path: Any) -> str:
    """The release gate's tables: beside the others on PostgreSQL, a file of their own
    on SQLite."""
    if postgres_database is not None:
        return database_url
    url = f"sqlite:///{tmp_path / 'gate.db'}"
    db = GateDatabase(url)
    db.migrate()
    db.dispose()
    return url


@pytest.fixture
def replayer() -> FakeReplayer:
    return FakeReplayer()


@pytest.fixture
def pm_settings(pm_url: str, tmp_path: Any) -> PostmortemSettings:
    return PostmortemSettings(
        database_url=pm_url, sentinel_database_url=f"sqlite:///{tmp_path / 'no-sentinel.db'}"
    )


@pytest.fixture
def pm(
    pm_settings: PostmortemSettings, clock: FakeClock, replayer: FakeReplayer
) -> Iterator[Postmortems]:
    service = Postmortems(
        settings=pm_settings,
        db=Database(pm_settings.database_url),
        clock=clock,
        replayer=replayer,
        drafter=lambda *_args: [],
    )
    yield service
    service.db.dispose()


COMPLETE = PostmortemForm(
    root_cause="A release changed the card expiry format for one payment method.",
    resolution="Rolled back release 42, then shipped the fixed formatter.",
    business_impact="Wallet payments failed for 45 minutes: about 300 orders lost.",
    conclusions="Failed payments per method now page on a threshold from a month of history.",
    release_id="42",
    rolled_back_at=datetime(2026, 1, 5, 12, 30, tzinfo=UTC),
    dependency="payment gateway",
    lessons=[{"kind": "do", "text": "Watch every payment method's failures separately."}],
)


def incident_in(**overrides: Any) -> IncidentIn:
    values: dict[str, Any] = {
        "title": "Wallet payments failing",
        "severity": "P1",
        "service": "translator",
        "incident_class": "bad_release",
        "source": "test",
    }
    values.update(overrides)
    return IncidentIn(**values)


def detective(**overrides: Any) -> ActionIn:
    values: dict[str, Any] = {
        "title": "Page on failed wallet payments",
        "kind": "detective",
        "owner": "alice",
        "due_date": date(2026, 1, 12),
        "signal": "payments.failed",
    }
    values.update(overrides)
    return ActionIn(**values)


def resolve(pm: Postmortems, incident_id: int) -> None:
    pm.transition(incident_id, TransitionIn(status="resolved"), "lead")
