"""The loop that runs the evaluation cycle: it sleeps until the instant the
cycle asks for next (the earliest due signal, or the lease/notifier poll),
instead of polling on a fixed job, so a 1-second signal is read every second
however late the previous wake-up was."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime

from common.clock import Clock
from common.logs import get_logger

log = get_logger(__name__)

# After a failed cycle: try again soon, but do not spin.
RETRY_SECONDS = 1.0


def run_on_cadence(
    step: Callable[[], datetime],
    clock: Clock,
    stop: threading.Event,
    wait: Callable[[float], bool] | None = None,
) -> None:
    """Call ``step`` (which answers when it next wants to run) until ``stop``.
    ``wait(seconds)`` sleeps and returns True to stop; by default it waits on
    ``stop``, so setting it ends the loop at once."""
    wait = wait or stop.wait
    while not stop.is_set():
        try:
            wake_at = step()
            delay = (wake_at - clock.now()).total_seconds()
        except Exception:
            log.exception("sentinel.cycle_failed")
            delay = RETRY_SECONDS
        if delay > 0 and wait(delay):
            return
