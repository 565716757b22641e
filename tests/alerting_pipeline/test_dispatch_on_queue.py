"""A page goes to the dispatcher the moment it is queued: the notifier wakes
the in-process dispatcher, which otherwise only polls (here: once an hour)."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from sentinel.alerting.dispatcher import Dispatcher
from sentinel.alerting.notifier import Notifier
from sentinel.alerting.outbox import Outgoing
from tests.alerting_pipeline.conftest import Rig, make_config

HOUR = 3600.0


@dataclass
class Sent:
    ok: bool = True
    retryable: bool = False
    provider_id: str | None = "SM1"
    retry_after: float | None = None
    error: str | None = None
    status: str = "queued"


class FakeChannel:
    def __init__(self) -> None:
        self.items: list[Outgoing] = []
        self.arrived = threading.Event()

    def __call__(self, item: Outgoing) -> Sent:
        self.items.append(item)
        self.arrived.set()
        return Sent(provider_id=f"P{item.id}")


def _serving(dispatcher: Dispatcher) -> threading.Thread:
    thread = threading.Thread(target=dispatcher.serve, args=(HOUR,), daemon=True)
    thread.start()
    assert dispatcher.idle.wait(10), "the dispatcher never went idle"
    return thread


def test_a_page_queued_while_the_dispatcher_idles_is_sent_without_waiting_for_the_poll(
    rig: Rig,
) -> None:
    channel = FakeChannel()
    dispatcher = Dispatcher(rig.db, dict.fromkeys(("sms", "voice", "slack"), channel), rig.clock)
    notifier = Notifier(rig.db, make_config(), rig.clock, on_queued=dispatcher.wake)
    thread = _serving(dispatcher)
    try:
        assert dispatcher.wakeups == 0 and not channel.items
        rig.fire("queue.lag", severity="P3", service="translator")  # route "rest": no group wait
        stats = notifier.run_once()
        assert stats.notifications > 0
        # The poll is an hour away: only the wake-up can have sent it.
        assert channel.arrived.wait(10), "the page waited for the poll"
        assert dispatcher.wakeups >= 1
        assert dispatcher.idle.wait(10)
        assert {n.status.value for n in rig.notifications()} == {"sent"}
        assert any(item.channel == "sms" for item in channel.items)
    finally:
        dispatcher.stop()
        thread.join(10)
    assert not thread.is_alive()


def test_without_a_wake_up_the_page_waits_for_the_poll(rig: Rig) -> None:
    """The fallback for pages queued by another process: nothing tells this
    dispatcher, so it sends on its next poll, not before."""
    channel = FakeChannel()
    dispatcher = Dispatcher(rig.db, dict.fromkeys(("sms", "voice", "slack"), channel), rig.clock)
    thread = _serving(dispatcher)
    try:
        rig.fire("queue.lag", severity="P3", service="translator")
        assert rig.run().notifications > 0  # a notifier that does not know this dispatcher
        assert not channel.arrived.is_set() and dispatcher.idle.is_set()
        assert {n.status.value for n in rig.notifications()} == {"pending"}
        dispatcher.wake()  # what the poll would do an hour later
        assert channel.arrived.wait(10)
    finally:
        dispatcher.stop()
        thread.join(10)


def test_stop_ends_an_idle_dispatcher_at_once(rig: Rig) -> None:
    dispatcher = Dispatcher(rig.db, {}, rig.clock)
    thread = _serving(dispatcher)
    dispatcher.stop()
    thread.join(10)
    assert not thread.is_alive() and dispatcher.wakeups == 0
