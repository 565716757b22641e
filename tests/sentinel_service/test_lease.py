"""Leader election between replicas sharing one database."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from sentinel import lease
from sentinel.db import Database

TTL = timedelta(seconds=15)
T0 = datetime(2026, 3, 3, 12, 0, tzinfo=UTC)


def test_one_leader_and_takeover_after_expiry(sentinel_url):
    a, b = Database(sentinel_url), Database(sentinel_url)  # two replicas, two pools
    assert lease.acquire(a, "eval", "replica-a", T0, TTL)
    assert not lease.acquire(b, "eval", "replica-b", T0 + timedelta(seconds=1), TTL)
    assert lease.acquire(a, "eval", "replica-a", T0 + timedelta(seconds=10), TTL)  # renew
    # a dies: its last renewal runs out 15 s later, then b takes over.
    assert not lease.acquire(b, "eval", "replica-b", T0 + timedelta(seconds=24), TTL)
    assert lease.acquire(b, "eval", "replica-b", T0 + timedelta(seconds=25), TTL)
    assert not lease.acquire(a, "eval", "replica-a", T0 + timedelta(seconds=26), TTL)
    assert lease.holder_of(a, "eval")[0] == "replica-b"
    lease.release(b, "eval", "replica-b", T0 + timedelta(seconds=27))
    assert lease.acquire(a, "eval", "replica-a", T0 + timedelta(seconds=27), TTL)
    a.dispose()
    b.dispose()


def test_racing_replicas_elect_exactly_one(sentinel_url):
    replicas = [Database(sentinel_url) for _ in range(6)]
    barrier = threading.Barrier(len(replicas))
    won: list[str] = []

    def run(i: int) -> None:
        barrier.wait()
        if lease.acquire(replicas[i], "race", f"r{i}", T0, TTL):
            won.append(f"r{i}")

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(replicas))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1
    for db in replicas:
        db.dispose()
