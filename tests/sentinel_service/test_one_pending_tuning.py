"""One tuning proposal waits for a person per series, and one tuning is applied: a
re-tune supersedes the one it replaces (kept, marked superseded), the database
refuses a second waiting or applied one, and concurrent tunings leave exactly one;
`GET /api/signals/{name}/tunings` lists them, the waiting one first."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert, select, text
from sqlalchemy.exc import IntegrityError

from common.db import make_engine, upgrade
from common.yaml_config import parse_yaml_model
from sentinel import tunings
from sentinel.api import create_app
from sentinel.catalogue import Catalogue
from sentinel.db import MIGRATIONS_DIR, Database
from sentinel.models import Tuning, TuningStatus
from sentinel.service import build_sentinel
from sentinel.settings import SentinelSettings
from tests.conftest import fresh_database
from tests.identity import ANONYMOUS

CPU = "host.cpu_busy_ratio"
NODE = 'instance="node-1:9100"'
CATALOGUE = """
signals:
  - name: host.cpu_busy_ratio
    description: CPU busy
    kind: level
    interval_seconds: 60
    labels: {team: ops, service: host}
    detector: {kind: static, params: {threshold: 0.8, direction: above}}
    source: {type: push}
"""


def _spec(threshold: float) -> dict:
    return {"kind": "static", "params": {"threshold": threshold}}


def _propose(db: Database, threshold: float, clock, series: str = NODE) -> int:  # type: ignore[no-untyped-def]
    clock.advance(seconds=60)
    return tunings.record(db, CPU, _spec(threshold), {}, clock.now(), apply=False, by="retune",
                          series=series)  # fmt: skip


def _statuses(db: Database) -> dict[int, TuningStatus]:
    with db.session() as s:
        return dict(s.execute(select(Tuning.id, Tuning.status).order_by(Tuning.id)).all())


def test_a_second_retune_supersedes_the_waiting_proposal(sentinel_url, clock) -> None:
    db = Database(sentinel_url)
    try:
        applied = tunings.record(db, CPU, _spec(0.8), {}, clock.now(), apply=True, by="alice",
                                 series=NODE)  # fmt: skip
        first = _propose(db, 0.85, clock)
        second = _propose(db, 0.9, clock)
        other = _propose(db, 0.7, clock, series='instance="node-2:9100"')
        assert _statuses(db) == {
            applied: TuningStatus.applied,  # a proposal never touches what is applied
            first: TuningStatus.superseded,  # kept, not deleted
            second: TuningStatus.proposed,
            other: TuningStatus.proposed,  # another series waits on its own
        }
        # the superseded one can no longer be accepted
        with pytest.raises(LookupError, match=f"no proposed tuning {first}"):
            tunings.decide(db, first, True, "alice", clock.now())
        assert tunings.decide(db, second, True, "alice", clock.now()).status == "applied"
        assert _statuses(db)[applied] == TuningStatus.superseded
    finally:
        db.dispose()


def test_applying_a_tuning_by_hand_retires_the_proposal_still_waiting(sentinel_url, clock) -> None:
    """Accepted later, the older proposal would silently undo what a person applied."""
    db = Database(sentinel_url)
    try:
        waiting = _propose(db, 0.85, clock)
        clock.advance(seconds=60)
        applied = tunings.record(db, CPU, _spec(0.95), {}, clock.now(), apply=True, by="alice",
                                 series=NODE)  # fmt: skip
        assert _statuses(db) == {
            waiting: TuningStatus.superseded,
            applied: TuningStatus.applied,
        }
        with pytest.raises(LookupError, match=f"no proposed tuning {waiting}"):
            tunings.decide(db, waiting, True, "bob", clock.now())
    finally:
        db.dispose()


def test_the_database_refuses_a_second_waiting_proposal(sentinel_url, clock) -> None:
    db = Database(sentinel_url)
    try:
        _propose(db, 0.85, clock)
        row = {"signal": CPU, "series": NODE, "status": "proposed", "spec": _spec(0.9),
               "provenance": {}, "created_at": clock.now()}  # fmt: skip
        with pytest.raises(IntegrityError), db.session() as s:
            s.execute(insert(Tuning).values(**row))
        # rejected and superseded ones may be many
        with db.session() as s:
            for status in ("rejected", "rejected", "superseded", "superseded"):
                s.execute(insert(Tuning).values(**(row | {"status": status})))
        # one applied: the evaluator runs a single tuning per series
        tunings.record(db, CPU, _spec(0.8), {}, clock.now(), apply=True, by="alice",
                       series=NODE)  # fmt: skip
        with pytest.raises(IntegrityError), db.session() as s:
            s.execute(insert(Tuning).values(**(row | {"status": "applied"})))
    finally:
        db.dispose()


@pytest.mark.parametrize("apply", [False, True], ids=["re-tunes", "tunes-by-hand"])
def test_concurrent_tunings_leave_one_waiting_or_applied(sentinel_url, clock, apply) -> None:
    db = Database(sentinel_url)
    start = threading.Barrier(6)
    failures: list[BaseException] = []

    def retune(n: int) -> None:
        start.wait()
        try:
            for i in range(5):
                at = clock.now() + timedelta(seconds=10 * n + i)
                tunings.record(db, CPU, _spec(0.8 + n / 100), {}, at, apply=apply,
                               by=f"replica-{n}", series=NODE)  # fmt: skip
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    threads = [threading.Thread(target=retune, args=(n,)) for n in range(6)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert failures == []
        statuses = list(_statuses(db).values())
        assert len(statuses) == 30
        current = TuningStatus.applied if apply else TuningStatus.proposed
        assert statuses.count(current) == 1
        assert statuses.count(TuningStatus.superseded) == 29
    finally:
        db.dispose()


def test_the_api_lists_a_signals_tunings_waiting_first(sentinel_url, database_url, clock) -> None:
    settings = SentinelSettings(database_url=sentinel_url, translator_database_url=database_url)
    catalogue = parse_yaml_model(CATALOGUE, Catalogue)
    sentinel = build_sentinel(settings, clock=clock, catalogue=catalogue, migrate=False)
    try:
        db = sentinel.db
        applied = tunings.record(db, CPU, _spec(0.8), {}, clock.now(), apply=True, by="alice",
                                 series=NODE)  # fmt: skip
        first = _propose(db, 0.85, clock)
        clock.advance(seconds=60)
        newer = tunings.record(db, CPU, _spec(0.75), {}, clock.now(), apply=True, by="bob",
                               series=NODE)  # fmt: skip
        second = _propose(db, 0.9, clock)
        with TestClient(create_app(sentinel, run_loop=False)) as http:
            listed = http.get(f"/api/signals/{CPU}/tunings").json()
            assert [(t["id"], t["status"]) for t in listed] == [
                (second, "proposed"),
                (newer, "applied"),
                (first, "superseded"),
                (applied, "superseded"),
            ]
            assert listed[0]["spec"] == _spec(0.9) and listed[0]["series"] == NODE
            assert listed[1]["decided_by"] == "bob"
            missing = http.get("/api/signals/no.such/tunings")
            assert missing.status_code == 404
            assert http.get(f"/api/signals/{CPU}/tunings", headers=ANONYMOUS).status_code == 401
    finally:
        sentinel.close()


def test_the_migrations_keep_the_newest_proposal_and_applied_tuning(tmp_path) -> None:
    with fresh_database(tmp_path, "pending_tunings") as url:
        engine = make_engine(url)
        try:
            upgrade(engine, MIGRATIONS_DIR, "s0008")
            with engine.begin() as conn:
                for series, status in ((NODE, "proposed"), (NODE, "proposed"), (NODE, "proposed"),
                                       ("", "proposed"), (NODE, "applied"), (NODE, "applied"),
                                       ("", "applied")):  # fmt: skip
                    conn.execute(
                        text(
                            "INSERT INTO tunings (signal, series, status, spec, provenance,"
                            " created_at) VALUES (:signal, :series, :status, '{}', '{}',"
                            " '2026-03-01 00:00:00')"
                        ),
                        {"signal": CPU, "series": series, "status": status},
                    )
            upgrade(engine, MIGRATIONS_DIR)
            with engine.connect() as conn:
                rows = conn.execute(text("SELECT id, status FROM tunings ORDER BY id")).all()
            assert [status for _, status in rows] == [
                "superseded", "superseded", "proposed", "proposed",
                "superseded", "applied", "applied",  # the newest applied per series
            ]  # fmt: skip
        finally:
            engine.dispose()
