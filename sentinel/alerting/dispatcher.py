"""The dispatcher: claims due notifications from the outbox and sends them.

After GoAlert's message engine: every provider call runs under a deadline
(the channels' own connect and read timeouts, and the dispatcher's
``send_deadline`` past which it stops waiting), so no wait on a provider can
hold up another page. Sends run on a pool of workers and are recorded as each
one answers; a slow or hung provider keeps only its own pages waiting, and
never more than ``workers - 1`` workers. Claims are leased for seconds and
renewed by a heartbeat, so a dead dispatcher's pages are taken over within one
lease; a taken-over page is looked up at the provider (by its id, or among
recent messages to its recipient) and settled instead of being sent again.
When a channel has failed for a while, a configured failover route carries
its pages, while one page now and then still tries the channel itself."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from common.clock import Clock
from common.logs import get_logger
from sentinel.alerting.models import ChannelHealth
from sentinel.alerting.outbox import (
    Carried,
    Failure,
    Find,
    LookupFailed,
    OnFailed,
    Outgoing,
    Result,
    RetryPolicy,
    Send,
    Settled,
    channel_health,
    claim,
    known_refs,
    owned_elsewhere,
    record_many,
    release,
    renew,
)
from sentinel.db import Database

log = get_logger(__name__)

Outcomes = list[tuple[Outgoing, Result]]


@dataclass(frozen=True)
class Failover:
    """A second route for pages of ``channels`` once one of them has failed for
    ``after`` (a webhook to another SMS gateway, say)."""

    send: Send
    channels: frozenset[str]
    after: timedelta
    probe_every: timedelta = timedelta(seconds=30)  # one page per interval still tries the channel


@dataclass
class _Lane:
    """Edits of one message go in order on one worker; anything else is a lane of one."""

    key: object
    items: list[Outgoing]
    channel: str
    started: float = field(default_factory=time.monotonic)


class Dispatcher:
    def __init__(
        self,
        db: Database,
        channels: Mapping[str, Send],
        clock: Clock,
        policy: RetryPolicy | None = None,
        lease: timedelta = timedelta(seconds=6),
        batch: int = 100,
        workers: int = 1,
        on_failed: OnFailed | None = None,
        on_stalled: OnFailed | None = None,
        finders: Mapping[str, Find] | None = None,
        failover: Failover | None = None,
        send_deadline: timedelta = timedelta(seconds=30),
    ) -> None:
        self.db, self.channels, self.clock = db, channels, clock
        self.policy = policy or RetryPolicy()
        self.lease, self.batch, self.workers = lease, batch, max(workers, 1)
        self.on_failed, self.on_stalled = on_failed, on_stalled
        self.finders = dict(finders or {})
        self.failover = failover
        self.send_deadline = send_deadline.total_seconds()
        self.heartbeat_seconds = max(lease.total_seconds() / 3, 0.05)
        self._pool = ThreadPoolExecutor(self.workers, "deliver") if self.workers > 1 else None
        # A hung provider may hold at most this many workers: the rest serve other channels.
        self.per_channel = max(self.workers - 1, 1)
        self._activity = threading.Event()  # something to do: a wake-up or a finished send
        self._woken = False
        self._stopping = threading.Event()
        self.idle = threading.Event()  # set while ``serve`` waits for work
        self.wakeups = 0  # passes started by ``wake`` rather than by the poll
        self.last_ok_at: datetime | None = None  # the last pass that reached the database
        self.last_error: str | None = None
        self._lock = threading.Lock()
        self._in_flight: dict[Future[Outcomes], _Lane] = {}
        self._ready: deque[_Lane] = deque()  # claimed, waiting for a worker
        self._waiting: dict[object, deque[list[Outgoing]]] = {}  # edits behind one in flight
        self._zombies: dict[Future[Outcomes], str] = {}  # abandoned sends still running
        self._refs: dict[str, str] = {}
        self._outcomes: Outcomes = []
        self._first_outcome_at = 0.0
        self._health: dict[str, ChannelHealth] = {}
        self._health_read = 0.0
        self._probed: dict[str, float] = {}
        self._last_beat = time.monotonic()

    # ------------------------------------------------------------ running

    def wake(self) -> None:
        """Something was just queued: ``serve`` looks now instead of at its next poll."""
        self._woken = True
        self._activity.set()

    def serve(self, poll_seconds: float) -> None:
        """Send until ``stop``: claim as workers free up, record each answer as
        it comes, look again when woken, when a send finishes, or every
        ``poll_seconds`` (pages queued by other processes, retries falling due).
        On ``stop`` the claims still held are handed back."""
        log.info(
            "dispatcher.serving",
            workers=self.workers,
            lease_seconds=self.lease.total_seconds(),
            send_deadline_seconds=self.send_deadline,
        )
        try:
            while not self._stopping.is_set():
                self._activity.clear()
                claimed, recorded = self._pass_safely()
                if claimed or recorded:
                    continue
                idle = not self._in_flight and not self._ready
                if idle:
                    self.idle.set()
                # Answers waiting to be recorded are stored within 50 ms.
                wait = 0.05 if self._outcomes else min(poll_seconds, self.heartbeat_seconds)
                self._activity.wait(wait)
                self.idle.clear()
                if self._woken and not self._stopping.is_set():
                    self.wakeups += 1
                self._woken = False
        finally:
            self._hand_back()

    def stop(self) -> None:
        self._stopping.set()
        self._activity.set()

    def run_once(self) -> int:
        """Send one batch of what is due now; returns how many were attempted."""
        return self.drain(max_items=self.batch)

    def drain(self, max_items: int = 10_000) -> int:
        """Send everything due now (up to ``max_items``) and wait for the answers;
        for tests, ``sentinel deliver --once`` and callers that want it done.
        Returns how many were attempted."""
        total = 0
        while True:
            self._activity.clear()
            claimed, recorded = self._pass(budget=max_items - total)
            total += claimed
            if not claimed and not self._in_flight and not self._ready and not self._outcomes:
                return total
            if not claimed and not recorded:
                self._activity.wait(0.05)

    def close(self) -> None:
        if self._pool is not None:
            # A send stuck past its deadline must not hold the process: its claim is handed back.
            self._pool.shutdown(wait=not self._zombies, cancel_futures=True)

    # ------------------------------------------------------------ one pass

    def _pass_safely(self) -> tuple[int, int]:
        try:
            return self._pass()
        except Exception as exc:  # the database is away: keep going, health says so
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.exception("notification.dispatch_failed")
            self._stopping.wait(1.0)
            return 0, 0

    def _pass(self, budget: int | None = None) -> tuple[int, int]:
        """Record what came back, renew the claims, claim what workers can take."""
        self._collect()
        self._abandon_overdue()
        recorded = self._record()
        self._beat()
        claimed = 0
        if not self._stopping.is_set() and (budget is None or budget > 0):
            claimed = self._claim(budget)
        self._start_ready()
        self.last_ok_at = self.clock.now()
        self.last_error = None
        return claimed, recorded

    def _busy(self) -> dict[str, int]:
        """Sends running (or abandoned but still running) per channel."""
        busy: dict[str, int] = {}
        for lane in self._in_flight.values():
            busy[lane.channel] = busy.get(lane.channel, 0) + 1
        for channel in self._zombies.values():
            busy[channel] = busy.get(channel, 0) + 1
        return busy

    def _claim(self, budget: int | None) -> int:
        """Claim ahead of the workers, a batch at a time, except on channels
        whose workers and queue are full (a hung provider's pages stay unclaimed,
        free for a dispatcher that can send them)."""
        queued: dict[str, int] = {}
        for lane in self._ready:
            queued[lane.channel] = queued.get(lane.channel, 0) + len(lane.items)
        ahead = sum(queued.values())
        # Inline, a whole batch; on workers, two rounds ahead (a dead dispatcher
        # leaves few claims to take over).
        depth = self.batch if self._pool is None else min(self.batch, 2 * self.workers)
        if ahead >= max(depth // 2, 1):
            return 0
        limit = depth - ahead if budget is None else min(depth - ahead, budget)
        if limit <= 0:
            return 0
        busy = self._busy()
        full = [
            c
            for c in set(busy) | set(queued)
            if busy.get(c, 0) >= self.per_channel and queued.get(c, 0) >= self.workers
        ]
        items = claim(self.db, self.clock.now(), self.lease, limit, skip_channels=full)
        if not items:
            return 0
        self._refresh_health()
        new_refs = {i.payload["ref"] for i in items if i.payload.get("ref")} - set(self._refs)
        self._refs.update(known_refs(self.db, new_refs))
        for key, lane in _lanes(items).items():
            if key in self._waiting:
                self._waiting[key].append(lane)  # after the edit already in flight
                continue
            if isinstance(key, str):
                self._waiting[key] = deque()
            self._ready.append(_Lane(key, lane, lane[0].channel))
        return len(items)

    def _start_ready(self) -> None:
        """Hand claimed lanes to free workers, never more than ``per_channel``
        of one channel at a time."""
        if not self._ready:
            return
        if self._pool is None:  # one worker sends inline: the whole batch, in order
            while self._ready:
                lane = self._ready.popleft()
                self._submit(lane.key, lane.items)
                self._collect()  # an edit queued behind this lane joins the ready queue
                self._beat()  # a long batch keeps the claims it has not reached yet
            return
        busy = self._busy()
        running = sum(busy.values())
        skipped: deque[_Lane] = deque()
        while self._ready and running < self.workers:
            lane = self._ready.popleft()
            if busy.get(lane.channel, 0) >= self.per_channel:
                skipped.append(lane)
                continue
            self._submit(lane.key, lane.items)
            busy[lane.channel] = busy.get(lane.channel, 0) + 1
            running += 1
        skipped.extend(self._ready)
        self._ready = skipped

    def _submit(self, key: object, items: list[Outgoing]) -> None:
        lane = _Lane(key, items, items[0].channel)  # started now: its deadline runs from here
        if self._pool is None:
            done: Future[Outcomes] = Future()  # one worker: send right here
            done.set_result(self._lane(items))
        else:
            done = self._pool.submit(self._lane, items)
        self._in_flight[done] = lane
        done.add_done_callback(lambda _f: self._activity.set())

    def _collect(self) -> None:
        for future in [f for f in self._in_flight if f.done()]:
            lane = self._in_flight.pop(future)
            if not self._outcomes:
                self._first_outcome_at = time.monotonic()
            self._outcomes.extend(_outcomes_of(future, lane))
            queue = self._waiting.get(lane.key)
            if queue and not self._stopping.is_set():
                self._ready.appendleft(_Lane(lane.key, queue.popleft(), lane.channel))
            elif queue is not None and not queue:
                del self._waiting[lane.key]
        for future in [f for f in self._zombies if f.done()]:
            del self._zombies[future]

    def _record(self, force: bool = False) -> int:
        """Store what came back: at once when nothing else is running, else in
        batches of up to ``batch`` or every 50 ms, whichever comes first (the
        provider's id is on record within moments of its answer)."""
        if not self._outcomes:
            return 0
        due = (
            force
            or not self._in_flight
            or len(self._outcomes) >= self.batch
            or time.monotonic() - self._first_outcome_at >= 0.05
        )
        if not due:
            return 0
        outcomes, self._outcomes = self._outcomes, []
        try:
            record_many(
                self.db,
                outcomes,
                self.clock.now(),
                self.policy,
                self.on_failed,
                self.on_stalled,
            )
        except Exception:
            self._outcomes = outcomes + self._outcomes  # keep them for the next pass
            raise
        return len(outcomes)

    def _beat(self) -> None:
        """Renew the leases of every claim still held (sending, or queued behind an edit)."""
        now = time.monotonic()
        if now - self._last_beat < self.heartbeat_seconds:
            return
        self._last_beat = now
        tokens = {item.token for lane in self._in_flight.values() for item in lane.items}
        tokens |= {i.token for q in self._waiting.values() for lane in q for i in lane}
        tokens |= {i.token for lane in self._ready for i in lane.items}
        renew(self.db, tokens, self.clock.now(), self.lease)

    def _abandon_overdue(self) -> None:
        """A send past its deadline (a provider that never answers, despite the
        client's timeouts): stop waiting for it and hand its page back; whoever
        takes it asks the provider before sending again."""
        if self._pool is None:
            return
        now = time.monotonic()
        for future, lane in list(self._in_flight.items()):
            if now - lane.started < self.send_deadline:
                continue
            del self._in_flight[future]
            self._zombies[future] = lane.channel
            behind = [i for queued in self._waiting.pop(lane.key, deque()) for i in queued]
            log.error(
                "notification.send_overdue",
                channel=lane.channel,
                keys=",".join(i.key for i in lane.items),
                seconds=round(now - lane.started, 1),
            )
            release(self.db, behind, lane.items, self.clock.now())

    def _hand_back(self) -> None:
        """On the way out: let sends in flight finish within a few seconds, record
        them, and hand every other claim back for the next dispatcher."""
        if self._in_flight:
            wait_for(list(self._in_flight), timeout=min(5.0, self.send_deadline))
        try:
            self._collect()
            self._record(force=True)
            unsent = [i for q in self._waiting.values() for lane in q for i in lane]
            unsent += [i for lane in self._ready for i in lane.items]
            self._ready.clear()
            unsettled = [i for lane in self._in_flight.values() for i in lane.items]
            for future in list(self._in_flight):
                self._zombies[future] = self._in_flight.pop(future).channel
            self._waiting.clear()
            release(self.db, unsent, unsettled, self.clock.now())
        except Exception:
            log.exception("notification.hand_back_failed")  # their leases run out instead

    # ------------------------------------------------------------ one lane (a worker)

    def _lane(self, items: list[Outgoing]) -> Outcomes:
        out: Outcomes = []
        for item in items:
            ref = item.payload.get("ref")
            if ref and ref in self._refs:
                item = replace(item, payload={**item.payload, "slack_ts": self._refs[ref]})
            result = self._deliver(item)
            if ref and result.ok and result.provider_id:
                self._refs[ref] = result.provider_id
            out.append((item, result))
        return out

    def _deliver(self, item: Outgoing) -> Result:
        maybe_duplicate = False
        if item.taken_over:
            settled, maybe_duplicate = self._settle(item)
            if settled is not None:
                return settled
        send, carrier = self._route(item)
        if send is None:
            return Failure(f"no channel {item.channel!r}", retryable=False)
        try:
            result = send(item)
        except Exception as exc:  # a channel bug must not stop the others
            log.exception("notification.channel_crashed", channel=item.channel)
            result = Failure(f"{type(exc).__name__}: {exc}")
        if carrier or maybe_duplicate:
            return Carried(result, carrier=carrier, maybe_duplicate=maybe_duplicate)
        return result

    def _settle(self, item: Outgoing) -> tuple[Result | None, bool]:
        """A dead dispatcher's page: did the provider get it? Returns the settled
        result, or None and whether sending again may duplicate it."""
        find = self.finders.get(item.channel)
        if find is None:
            return None, True  # nobody to ask: send again, and the log says so
        try:
            found = find(item)
        except Exception as exc:
            return LookupFailed(f"could not ask {item.channel}: {type(exc).__name__}: {exc}"), False
        if found is None:
            return None, True  # the provider cannot say
        others = owned_elsewhere(self.db, [f.provider_id for f in found], item.id)
        for candidate in found:
            if candidate.provider_id in others:
                continue
            if candidate.went_out:
                log.warning(
                    "notification.settled_by_lookup",
                    notification_id=item.id,
                    key=item.key,
                    provider_id=candidate.provider_id,
                    status=candidate.status,
                )
                return Settled(candidate.provider_id, status=candidate.status[:32]), False
            return None, False  # the provider has it as failed: a fresh send is no duplicate
        return None, False

    def _route(self, item: Outgoing) -> tuple[Send | None, str | None]:
        primary = self.channels.get(item.channel)
        failover = self.failover
        if failover is None or item.channel not in failover.channels:
            return primary, None
        health = self._health.get(item.channel)
        now = self.clock.now()
        if health is None or health.failing_since is None:
            return primary, None
        if now - health.failing_since < failover.after:
            return primary, None
        with self._lock:
            last = self._probed.get(item.channel)
            mono = time.monotonic()
            if primary is not None and (
                last is None or mono - last >= failover.probe_every.total_seconds()
            ):
                self._probed[item.channel] = mono
                return primary, None  # the probe: is the channel back?
        return failover.send, "failover"

    def _refresh_health(self) -> None:
        if self.failover is None or time.monotonic() - self._health_read < 1.0:
            return
        self._health = channel_health(self.db)
        self._health_read = time.monotonic()


def _outcomes_of(future: Future[Outcomes], lane: _Lane) -> Outcomes:
    try:
        return future.result()
    except Exception as exc:  # _lane catches channel errors; this is a bug of ours
        log.exception("notification.lane_crashed")
        return [(item, Failure(f"{type(exc).__name__}: {exc}")) for item in lane.items]


def _lanes(items: list[Outgoing]) -> dict[object, list[Outgoing]]:
    """Edits of one message (same ``ref``) share a lane and go in order."""
    lanes: dict[object, list[Outgoing]] = {}
    for item in items:
        lanes.setdefault(item.payload.get("ref") or item.id, []).append(item)
    return lanes
