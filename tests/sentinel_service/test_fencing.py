"""The leader lease as the sentinel replicas use it: expiry judged by the
database's clock (a replica's skewed clock changes nothing), and a leader
deposed in the middle of its cycle writes nothing more, says so, and stops."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from common.clock import FakeClock
from common.yaml_config import parse_yaml_model
from sentinel.catalogue import Catalogue
from sentinel.models import Alert, AlertTransition, Notification
from sentinel.service import LEADER_LEASE, Sentinel, build_sentinel
from sentinel.settings import SentinelSettings
from sentinel.sources.base import Reading
from tests.sentinel_service.test_lease import expire

CATALOGUE = """
signals:
  - name: batch.failures
    description: failures a batch job pushes
    kind: count
    severity: P1
    interval_seconds: 30
    labels: {team: data, service: translator}
    source: {type: push, window_seconds: 60}
    detector: {kind: static, params: {threshold: 0.5, direction: above}, for_samples: 1}
"""


@pytest.fixture
def replicas(sentinel_url, database_url):
    """Two replicas on one database, ``a`` and ``b``, each with its own clock."""
    built: list[Sentinel] = []

    def make(name: str, clock: FakeClock) -> Sentinel:
        settings = SentinelSettings(
            database_url=sentinel_url, translator_database_url=database_url, replica=name
        )
        catalogue = parse_yaml_model(CATALOGUE, Catalogue)
        replica = build_sentinel(settings, clock=clock, catalogue=catalogue, migrate=False)
        built.append(replica)
        return replica

    yield make
    for replica in built:
        replica.close()


def test_a_replica_whose_clock_runs_a_day_ahead_does_not_steal_the_lease(replicas):
    start = datetime.now().astimezone()
    a = replicas("replica-a", FakeClock(start))
    b = replicas("replica-b", FakeClock(start + timedelta(days=1)))
    a.cycle()
    assert a.is_leader
    # By b's clock a's lease ran out a day ago; by the database's it is live.
    assert b.cycle() == 0 and not b.is_leader
    a.cycle()
    assert a.is_leader and a.term is not None and a.term.token == 1


class DeposedWhileReading:
    """A source whose read stalls the leader long enough for a standby to take
    over (a GC pause, a stopped VM): ``meanwhile`` runs inside the read."""

    def __init__(self, inner, meanwhile) -> None:  # type: ignore[no-untyped-def]
        self.inner, self.meanwhile = inner, meanwhile

    def read(self, now: datetime) -> Reading:
        self.meanwhile()
        return self.inner.read(now)

    def close(self) -> None:
        self.inner.close()


def test_a_leader_deposed_mid_cycle_writes_nothing_and_stops(replicas, caplog):
    clock = FakeClock(datetime.now().astimezone())
    a, b = replicas("replica-a", clock), replicas("replica-b", clock)
    a.push.push("batch.failures", 0, t=clock.now())
    a.cycle()  # all quiet
    assert a.is_leader and a.term is not None
    b.push.push("batch.failures", 3, t=clock.now())  # taken by the standby
    clock.advance(seconds=30)

    def takeover() -> None:  # a stalls past its lease; b takes over and evaluates
        expire(b.db, LEADER_LEASE)
        assert b.cycle() == 1 and b.is_leader

    a.sources["batch.failures"] = DeposedWhileReading(a.sources["batch.failures"], takeover)
    with caplog.at_level(logging.WARNING, logger="sentinel.service"):
        assert a.cycle() == 0
    assert not a.is_leader and a.term is None
    (lost,) = [r for r in caplog.records if r.getMessage() == "sentinel.lease_lost"]
    assert "held by replica-b (token 2), not replica-a (token 1)" in str(lost.fields["detail"])

    # One alert, one firing transition, written by b alone; a's page was never queued.
    with b.db.session() as s:
        alerts = s.scalars(select(Alert)).all()
        assert [(x.signal, x.state) for x in alerts] == [("batch.failures", "firing")]
        transitions = s.scalars(select(AlertTransition.to_state)).all()
        assert transitions == ["firing"]
        assert s.scalar(select(func.count()).select_from(Notification)) == 0
    # a is a standby now: it stays one while b renews, and b's page goes out once.
    clock.advance(minutes=2)  # past the group's wait
    assert a.cycle() == 0 and not a.is_leader
    b.cycle()
    with b.db.session() as s:
        pages = s.execute(select(Notification.channel, Notification.recipient)).all()
    assert pages and len(pages) == len(set(pages))  # each channel and person once
