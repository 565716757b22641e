"""An incident over the console's seeded records: the wallet payments alert linked to
it, release 1.4.0 (rolled back) in flight just before it, acknowledged, mitigated and
resolved by the on-call person; and the translator's files of the day, for the
reports. On the backend under test (postmortems and the translator beside the others
on PostgreSQL, files of their own on SQLite)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from common.clock import FakeClock
from common.db import make_engine
from postmortems.db import Database as PostmortemsDatabase
from postmortems.schemas import IncidentIn, TransitionIn
from postmortems.service import Postmortems
from postmortems.settings import PostmortemSettings
from tests.console.conftest import NOW
from translator.accounts.models import User
from translator.db import Database as TranslatorDatabase
from translator.files.models import File, FileStatus

STARTED = NOW - timedelta(minutes=19)  # the alert's first anomalous sample
DETECTED = NOW - timedelta(minutes=18)
ACKNOWLEDGED = NOW - timedelta(minutes=15)
MITIGATED = NOW - timedelta(minutes=10)
RESOLVED = NOW - timedelta(minutes=5)

# A bad release's postmortem as the incident lead writes it in the console's form.
COMPLETE = {
    "root_cause": "Release 1.4.0 changed the wallet token format the gateway expects.",
    "resolution": "The gate rolled 1.4.0 back to 1.3.9 after thirty seconds of canary.",
    "business_impact": "Wallet payments failed for 14 minutes: about 90 orders lost.",
    "conclusions": "Wallet failures now page per method; the canary judges payments too.",
    "rolled_back_at": "2026-03-04T09:30:55",
    "dos": "Canary every payment method\nWatch failures per method",
    "donts": "Don't ship a gateway format change without its contract test",
}


@dataclass
class IncidentRecords:
    pm: Postmortems
    incident_id: int
    alert_id: int
    release_id: int  # 1.4.0, the suspect
    translator: Engine


@pytest.fixture
def incident_records(
    console_reader: Any,
    gate_reader: Any,
    sentinel_url: str,
    database_url: str,
    postgres_database: str | None,
    tmp_path: Path,
):
    reader, alert_id = console_reader
    release_id = next(r.id for r in gate_reader.recent() if r.version == "1.4.0")
    url = database_url if postgres_database else f"sqlite:///{tmp_path / 'pm.db'}"
    db = PostmortemsDatabase(url)
    db.migrate()
    pm = Postmortems(
        PostmortemSettings(database_url=url, sentinel_database_url=sentinel_url),
        db,
        clock=FakeClock(NOW),
        drafter=lambda *_args: [],
        on_call_lookup=lambda _at: "alice",
    )
    opened = pm.open(
        IncidentIn(
            title="Wallet payments failing",
            severity="P1",
            service="translator",
            incident_class="bad_release",
            detected_at=DETECTED,
            alert_ids=[alert_id],
            source="watcher",
        ),
        actor="watcher",
    ).incident
    pm.transition(opened.id, TransitionIn(acknowledge=True, at=ACKNOWLEDGED), "alice")
    pm.transition(opened.id, TransitionIn(status="mitigated", at=MITIGATED), "alice")
    pm.transition(opened.id, TransitionIn(status="resolved", at=RESOLVED), "alice")
    translator = _translator_files(database_url)
    yield IncidentRecords(pm, opened.id, alert_id, release_id, translator)
    translator.dispose()
    db.dispose()


def _translator_files(url: str) -> Engine:
    """Three files today (two translated, in 4 and 8 minutes; one failed), one
    yesterday; a new user today. The engine reads them as the console does."""
    db = TranslatorDatabase(url)
    with db.session() as s:
        user = User(email="reader@example.com", api_token_hash="f" * 64, created_at=NOW)
        s.add(user)
        s.flush()

        def file(created: Any, status: FileStatus, minutes: float | None) -> File:
            return File(
                user_id=user.id,
                original_name="contract.docx",
                file_format="docx",
                size_bytes=1,
                file_path="/x",
                status=status,
                llm_provider="offline",
                created_at=created,
                translated_at=created + timedelta(minutes=minutes) if minutes else None,
            )

        s.add_all(
            [
                file(NOW - timedelta(hours=3), FileStatus.ready, 4),
                file(NOW - timedelta(hours=2), FileStatus.ready, 8),
                file(NOW - timedelta(hours=1), FileStatus.error, None),
                file(NOW - timedelta(days=1), FileStatus.ready, 6),
            ]
        )
    db.dispose()
    return make_engine(url, read_only=True)
