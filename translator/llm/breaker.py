"""A per-provider circuit breaker.

When a provider is down, every job would otherwise wait out its timeouts and
retries; the breaker turns that into an immediate :class:`LLMCircuitOpenError`
until a cool-down passes, then lets a single trial call find out whether the
provider is back.

    closed --N consecutive failures--> open --cool-down--> half_open
    half_open --trial succeeds--> closed
    half_open --trial fails--> open (another cool-down)
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Literal

from common.clock import Clock
from common.logs import get_logger
from translator.llm.exceptions import LLMCircuitOpenError

log = get_logger(__name__)

BreakerState = Literal["closed", "half_open", "open"]
CLOSED: BreakerState = "closed"
HALF_OPEN: BreakerState = "half_open"
OPEN: BreakerState = "open"
# For a Prometheus gauge: higher is worse.
STATE_VALUES: dict[str, int] = {CLOSED: 0, HALF_OPEN: 1, OPEN: 2}

StateChangeCallback = Callable[[str, str], None]


class CircuitBreaker:
    """Thread-safe breaker. Call :meth:`before_call`, then exactly one of
    :meth:`record_success` / :meth:`record_failure` with the ticket it returned."""

    def __init__(
        self,
        name: str,
        failure_threshold: int,
        cooldown_seconds: float,
        clock: Clock,
        on_state_change: StateChangeCallback | None = None,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError(f"breaker failure_threshold must be >= 1, got {failure_threshold}")
        if cooldown_seconds < 0:
            raise ValueError(f"breaker cooldown_seconds must be >= 0, got {cooldown_seconds}")
        self.name = name
        self.failure_threshold = failure_threshold
        self.cooldown = timedelta(seconds=cooldown_seconds)
        self._clock = clock
        self._on_state_change = on_state_change
        # Re-entrant so an on_state_change callback may read ``state`` without deadlocking.
        self._lock = threading.RLock()
        self._state: BreakerState = CLOSED
        self._failures = 0
        self._open_until: datetime | None = None
        self._trial_in_flight = False
        # Bumped on every transition; outcomes of calls admitted under an older epoch are
        # stale (e.g. a slow call from before the breaker opened must not pass as the trial).
        self._epoch = 0

    @property
    def state(self) -> BreakerState:
        with self._lock:
            self._refresh()
            return self._state

    @property
    def state_value(self) -> int:
        """closed=0, half_open=1, open=2 — for a metrics gauge."""
        return STATE_VALUES[self.state]

    @property
    def consecutive_failures(self) -> int:
        with self._lock:
            return self._failures

    @property
    def open_until(self) -> datetime | None:
        with self._lock:
            return self._open_until if self._state == OPEN else None

    def before_call(self) -> int:
        """Admit a call or raise :class:`LLMCircuitOpenError`. Returns a ticket for the outcome."""
        with self._lock:
            self._refresh()
            if self._state == CLOSED:
                return self._epoch
            if self._state == HALF_OPEN and not self._trial_in_flight:
                self._trial_in_flight = True
                log.info("llm.breaker.trial", provider=self.name)
                return self._epoch
            if self._state == HALF_OPEN:
                raise LLMCircuitOpenError(
                    f"circuit for provider {self.name!r} is half-open and its trial call "
                    "is still running; not calling it",
                    provider=self.name,
                )
            assert self._open_until is not None
            raise LLMCircuitOpenError(
                f"circuit for provider {self.name!r} is open until "
                f"{self._open_until.isoformat()}; not calling it",
                provider=self.name,
                open_until=self._open_until,
            )

    def record_success(self, ticket: int | None = None) -> None:
        with self._lock:
            if self._is_stale(ticket):
                return
            self._failures = 0
            if self._state == HALF_OPEN:
                self._trial_in_flight = False
                self._transition(CLOSED)

    def record_failure(self, ticket: int | None = None) -> None:
        with self._lock:
            if self._is_stale(ticket):
                return
            self._failures += 1
            if self._state == HALF_OPEN:
                self._trial_in_flight = False
                self._open()
            elif self._failures >= self.failure_threshold:
                self._open()

    # -- internals, all called with the lock held --

    def _is_stale(self, ticket: int | None) -> bool:
        # While open, every outcome belongs to a call admitted before it opened.
        if self._state == OPEN:
            return True
        return ticket is not None and ticket != self._epoch

    def _refresh(self) -> None:
        if (
            self._state == OPEN
            and self._open_until is not None
            and self._clock.now() >= self._open_until
        ):
            self._trial_in_flight = False
            self._transition(HALF_OPEN)

    def _open(self) -> None:
        self._open_until = self._clock.now() + self.cooldown
        self._transition(OPEN)

    def _transition(self, new: BreakerState) -> None:
        old, self._state = self._state, new
        self._epoch += 1
        if new == OPEN:
            log.warning(
                "llm.breaker.opened",
                provider=self.name,
                failures=self._failures,
                previous=old,
                until=self._open_until.isoformat() if self._open_until else None,
            )
        elif new == HALF_OPEN:
            log.info("llm.breaker.half_open", provider=self.name)
        else:
            self._failures = 0
            self._open_until = None
            log.info("llm.breaker.closed", provider=self.name, previous=old)
        if self._on_state_change is not None:
            # Called under the lock so a gauge never ends on a stale value; a broken
            # callback must not break translation.
            try:
                self._on_state_change(self.name, new)
            except Exception:
                log.exception("llm.breaker.callback_failed", provider=self.name, state=new)
