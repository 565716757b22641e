"""Two ``sentinel serve`` replicas on PostgreSQL; the leader is SIGKILLed while
values are being pushed. The standby takes over within the lease, every
pushed value that was acknowledged is there, the alert that fired before the
kill is not paged again, and the one that started in the gap is paged once."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from tests.chaos.stack import Lease, Pusher, pages_for, start_sentinel, wait_for
from tests.conftest import BACKEND

LEASE_SECONDS = 3.0

pytestmark = [
    pytest.mark.slow,
    pytest.mark.postgres_journey,
    pytest.mark.skipif(BACKEND != "postgres", reason="replicas share PostgreSQL (its pass)"),
]


def test_the_leader_killed_mid_stream_loses_nothing_and_pages_nothing_twice(
    database_url: str, tmp_path: Path
) -> None:
    outbox = tmp_path / "outbox.jsonl"
    lease = Lease(database_url)
    a = start_sentinel("a", database_url, tmp_path, LEASE_SECONDS)
    b = pusher = None
    try:
        wait_for(lambda: lease.holder() == "a", 30, "replica a to lead")
        b = start_sentinel("b", database_url, tmp_path, LEASE_SECONDS)
        assert lease.holder() == "a"
        pusher = Pusher([b.url, a.url])  # the standby takes half of the pushes
        pusher.set("1", 5.0)
        pusher.start()
        wait_for(lambda: pages_for(outbox, "1"), 30, "shard 1's page from the leader")

        a.process.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        a.process.wait(10)
        pusher.set("2", 7.0)  # starts in the gap, before anyone leads
        wait_for(lambda: lease.holder() == "b", 30, "replica b to take over")
        takeover = time.monotonic() - killed
        wait_for(lambda: pages_for(outbox, "2"), 30, "shard 2's page from the new leader")
        paged = time.monotonic() - killed

        # The new leader has evaluated shard 1 a few times: had it lost the alert's
        # state, it would have opened and paged it again by now.
        def evaluated_since_takeover() -> bool:
            (count,) = lease.query(
                "SELECT count(*) FROM samples WHERE signal = 'orders.failed' "
                "AND series = 'n=\"1\"' AND t > clock_timestamp() - make_interval(secs => :s)",
                s=time.monotonic() - killed - takeover,
            )[0]
            return count >= 5

        wait_for(evaluated_since_takeover, 30, "five evaluations by the new leader")
        pusher.stop()

        alerts = lease.query(
            "SELECT labels, state, (SELECT count(*) FROM alert_transitions t "
            "WHERE t.alert_id = a.id AND t.to_state = 'firing') FROM alerts a ORDER BY id"
        )
        missing = [
            (shard, at)
            for shard, at in pusher.acknowledged
            if not lease.query(
                "SELECT 1 FROM pushed_samples WHERE series = :series AND t = :t",
                series=f'n="{shard}"',
                t=at,
            )
        ]
        print(
            f"\nfailover: takeover {takeover:.2f} s after SIGKILL (lease {LEASE_SECONDS:g} s); "
            f"gap alert paged {paged:.2f} s after; pages shard1={len(pages_for(outbox, '1'))} "
            f"shard2={len(pages_for(outbox, '2'))}; pushes acknowledged "
            f"{len(pusher.acknowledged)}, refused {pusher.refused}, missing {len(missing)}"
        )
        assert missing == []  # a 202 means stored, whichever replica answered
        assert takeover <= LEASE_SECONDS + 2.0, f"takeover took {takeover:.2f} s"
        assert len(pages_for(outbox, "1")) == 1  # not paged again by the new leader
        assert len(pages_for(outbox, "2")) == 1  # not missed in the gap
        assert [(labels["n"], state, firing) for labels, state, firing in alerts] == [
            ("1", "firing", 1),
            ("2", "firing", 1),
        ]
    finally:
        if pusher is not None:
            pusher.stop()
        for daemon in (a, b):
            if daemon is not None:
                daemon.stop()
        lease.close()
