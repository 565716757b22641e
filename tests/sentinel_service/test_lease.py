"""Leader election between replicas sharing one database: the database's
clock decides expiry, and a fencing token refuses a deposed leader's writes."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from common.db_clock import database_now
from sentinel import lease
from sentinel.db import Database
from sentinel.models import Alert, Lease

TTL = timedelta(seconds=60)


def expire(db: Database, name: str) -> None:
    """What the database sees once a holder stopped renewing for a whole lease."""
    with db.session() as s:
        now = database_now(s)
        s.execute(update(Lease).where(Lease.name == name).values(expires_at=now))


def test_one_leader_renewals_keep_the_term_and_takeovers_start_a_new_one(sentinel_url):
    a, b = Database(sentinel_url), Database(sentinel_url)  # two replicas, two pools
    first = lease.acquire(a, "eval", "replica-a", TTL)
    assert first is not None and first.token == 1
    assert lease.acquire(b, "eval", "replica-b", TTL) is None
    renewed = lease.acquire(a, "eval", "replica-a", TTL)
    assert renewed is not None and renewed.token == 1 and renewed.expires_at >= first.expires_at
    # a dies: once its last renewal has run out, b takes over in a new term.
    expire(a, "eval")
    taken = lease.acquire(b, "eval", "replica-b", TTL)
    assert taken is not None and taken.token == 2
    assert lease.acquire(a, "eval", "replica-a", TTL) is None
    holder, _, token = lease.holder_of(a, "eval")
    assert (holder, token) == ("replica-b", 2)
    # A clean step-down hands over at once, again in a new term.
    lease.release(b, "eval", "replica-b")
    back = lease.acquire(a, "eval", "replica-a", TTL)
    assert back is not None and back.token == 3
    # Its own lease lapsed (a long pause): coming back is a new term too.
    expire(a, "eval")
    again = lease.acquire(a, "eval", "replica-a", TTL)
    assert again is not None and again.token == 4
    a.dispose()
    b.dispose()


def test_expiry_is_judged_by_the_database_clock(sentinel_url):
    """A lease granted for 60 s is still live a moment later whatever the replicas'
    clocks say: ``acquire`` takes no time from its caller at all."""
    a, b = Database(sentinel_url), Database(sentinel_url)
    term = lease.acquire(a, "eval", "replica-a", TTL)
    assert term is not None
    with a.session() as s:
        now = database_now(s)
    assert now < term.expires_at <= now + TTL
    assert lease.acquire(b, "eval", "replica-b", TTL) is None
    a.dispose()
    b.dispose()


def test_racing_replicas_elect_exactly_one(sentinel_url):
    replicas = [Database(sentinel_url) for _ in range(6)]
    barrier = threading.Barrier(len(replicas))
    won: list[str] = []

    def run(i: int) -> None:
        barrier.wait()
        if lease.acquire(replicas[i], "race", f"r{i}", TTL):
            won.append(f"r{i}")

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(replicas))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1
    for db in replicas:
        db.dispose()


def test_a_deposed_leaders_writes_are_refused(sentinel_url):
    a, b = Database(sentinel_url), Database(sentinel_url)
    old = lease.acquire(a, "eval", "replica-a", TTL)
    assert old is not None
    fenced_a = lease.FencedDatabase(a, old)
    with fenced_a.session() as s:  # while it leads, its writes go through
        s.add(_alert("written by a"))
    expire(b, "eval")
    new = lease.acquire(b, "eval", "replica-b", TTL)
    assert new is not None and new.token == old.token + 1
    refused = pytest.raises(lease.LeaseLost, match="held by replica-b \\(token 2\\), not replica-a")
    with refused, fenced_a.session() as s:
        s.add(_alert("written by a after it lost the lease"))
    with lease.FencedDatabase(b, new).session() as s:
        s.add(_alert("written by b"))
    with a.session() as s:
        assert list(s.scalars(select(Alert.summary).order_by(Alert.id))) == [
            "written by a",
            "written by b",
        ]
    a.dispose()
    b.dispose()


def _alert(summary: str) -> Alert:
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    return Alert(
        fingerprint=summary[:16],
        signal="s",
        series="",
        labels={},
        severity="P1",
        state="firing",
        summary=summary,
        evidence={},
        started_at=now,
        updated_at=now,
    )
